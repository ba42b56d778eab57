"""Uploads a file to the embedded store with boto3 and a Ferry grant (path-style SigV4).

Reads one case as JSON on stdin: {"grant": <Ferry grant>, "token": <security token to send>,
"action": "multipart" | "no_overwrite", "key": ..., "file": ..., "part_size": ...}. Prints one
JSON line: what the store answered.
"""

import json
import sys

import loopback

import boto3
import botocore.config
import botocore.exceptions


def client_for(case):
    grant = case["grant"]
    config = botocore.config.Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=20,
        read_timeout=60,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=grant["endpoint"],
        region_name=grant["region"],
        aws_access_key_id=grant["access_key_id"],
        aws_secret_access_key=grant["secret_access_key"],
        aws_session_token=case["token"],
        config=config,
    )


def multipart(client, case):
    bucket, key = case["grant"]["bucket"], case["key"]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, data in enumerate(loopback.parts_of(case["file"], case["part_size"]), 1):
        result = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        parts.append({"PartNumber": number, "ETag": result["ETag"]})
    listed = client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    done = client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    head = client.head_object(Bucket=bucket, Key=key)
    return {
        "ok": True,
        "etag": done["ETag"],
        "head_etag": head["ETag"],
        "head_size": head["ContentLength"],
        "parts": len(parts),
        "listed_parts": [[p["PartNumber"], p["ETag"], p["Size"]] for p in listed],
    }


def refusal(call):
    """What the store answered `call`: {"ok": True} or the error's status and code."""
    try:
        call()
        return {"ok": True}
    except botocore.exceptions.ClientError as err:
        return {
            "ok": False,
            "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "code": err.response.get("Error", {}).get("Code"),
        }


def no_overwrite(client, case):
    """Writes the key, then tries to write it again with `If-None-Match: *`, in one PUT and in a
    multipart upload's Complete; and a new key with the same condition."""
    bucket, key = case["grant"]["bucket"], case["key"]
    client.put_object(Bucket=bucket, Key=key, Body=b"first")
    again = refusal(
        lambda: client.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    )
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"third"
    )
    complete = refusal(
        lambda: client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            IfNoneMatch="*",
        )
    )
    fresh = refusal(
        lambda: client.put_object(Bucket=bucket, Key=key + ".new", Body=b"new", IfNoneMatch="*")
    )
    return {"ok": True, "put": again, "complete": complete, "fresh": fresh}


def main():
    case = json.load(sys.stdin)
    client = client_for(case)
    try:
        answer = {"multipart": multipart, "no_overwrite": no_overwrite}[case["action"]](
            client, case
        )
    except botocore.exceptions.ClientError as err:
        error = err.response.get("Error", {})
        answer = {
            "ok": False,
            "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "code": error.get("Code"),
            "message": error.get("Message"),
        }
    print(json.dumps(answer))


main()
