"""Uploads a file to the embedded store with Huawei's esdk-obs-python SDK and a Ferry grant.

Reads one case as JSON on stdin: {"grant": <Ferry grant>, "token": <security token to send>,
"addressing": "virtual_hosted" | "cname", "action": "multipart", "key": ..., "file": ...,
"part_size": ...}. Prints one JSON line: what the store answered.

The SDK signs the OBS way (`OBS ak:sig`, `x-obs-security-token`) only with virtual-hosted
addressing on a host name: given an IP endpoint or is_cname=True it switches to the S3 V2
flavor OBS also accepts (`AWS ak:sig`, `x-amz-security-token`, and in CNAME mode the domain
signed in place of the bucket). "virtual_hosted" points it at `<bucket>.obs.ferry.test:<port>`
(see loopback.py); "cname" uses the grant's endpoint as given, with is_cname=True.
"""

import json
import sys

import loopback

from obs import CompleteMultipartUploadRequest, CompletePart, ObsClient


def client_for(case):
    grant = case["grant"]
    common = dict(
        access_key_id=grant["access_key_id"],
        secret_access_key=grant["secret_access_key"],
        security_token=case["token"],
        max_retry_count=0,
        timeout=30,
    )
    if case["addressing"] == "cname":
        return ObsClient(server=grant["endpoint"], is_cname=True, **common)
    return ObsClient(
        server=loopback.with_host(grant["endpoint"], "obs.ferry.test"),
        signature="obs",
        is_signature_negotiation=False,
        **common
    )


class Refused(Exception):
    def __init__(self, response):
        super().__init__(response.errorCode)
        self.answer = {
            "ok": False,
            "status": response.status,
            "code": response.errorCode,
            "message": response.errorMessage,
            "request_id": response.requestId,
        }


def checked(response):
    if response.status >= 300:
        raise Refused(response)
    return response


def multipart(client, case):
    bucket, key = case["grant"]["bucket"], case["key"]
    upload_id = checked(client.initiateMultipartUpload(bucket, key)).body.uploadId
    parts = []
    for number, data in enumerate(loopback.parts_of(case["file"], case["part_size"]), 1):
        result = checked(client.uploadPart(bucket, key, number, upload_id, content=data))
        parts.append(CompletePart(partNum=number, etag=result.body.etag))
    listed = checked(client.listParts(bucket, key, upload_id)).body.parts
    done = checked(
        client.completeMultipartUpload(bucket, key, upload_id, CompleteMultipartUploadRequest(parts))
    )
    head = checked(client.getObjectMetadata(bucket, key))
    return {
        "ok": True,
        "etag": done.body.etag,
        "head_etag": head.body.etag,
        "head_size": head.body.contentLength,
        "parts": len(parts),
        "listed_parts": [[p.partNumber, p.etag, p.size] for p in listed],
    }


def main():
    case = json.load(sys.stdin)
    client = client_for(case)
    try:
        answer = {"multipart": multipart}[case["action"]](client, case)
    except Refused as refused:
        answer = refused.answer
    finally:
        client.close()
    print(json.dumps(answer))


main()
