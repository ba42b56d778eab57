"""Uploads a file to the embedded store with Alibaba's oss2 SDK and a Ferry grant.

Reads one case as JSON on stdin: {"grant": <Ferry grant>, "token": <security token to send>,
"auth": "v4" | "v1", "addressing": "endpoint" | "cname",
"action": "multipart" | "presigned_put" | "no_overwrite",
"key": ..., "file": ..., "part_size": ...}. Prints one JSON line: what the store answered.
"""

import json
import sys

import loopback

import oss2
import oss2.exceptions
import oss2.utils

oss2.defaults.request_retries = 0
oss2.defaults.connect_timeout = 20


def bucket_for(case):
    grant = case["grant"]
    version = oss2.AUTH_VERSION_4 if case["auth"] == "v4" else oss2.AUTH_VERSION_1
    auth = oss2.StsAuth(
        grant["access_key_id"],
        grant["secret_access_key"],
        case["token"],
        auth_version=version,
    )
    endpoint = grant["endpoint"]
    if case["addressing"] == "cname":
        # oss2 treats an IP endpoint as path-style whatever is_cname says; a name keeps CNAME.
        endpoint = loopback.with_host(endpoint, "oss.ferry.test")
    return oss2.Bucket(
        auth, endpoint, grant["bucket"], is_cname=True, region=grant["region"], enable_crc=True
    )


def multipart(bucket, case):
    key = case["key"]
    upload_id = bucket.init_multipart_upload(key).upload_id
    parts = []
    client_crc = oss2.utils.Crc64()
    for number, data in enumerate(loopback.parts_of(case["file"], case["part_size"]), 1):
        result = bucket.upload_part(key, upload_id, number, data)
        if result.crc is None:
            raise AssertionError("UploadPart answered without x-oss-hash-crc64ecma")
        client_crc.update(data)
        parts.append(oss2.models.PartInfo(number, result.etag, size=len(data), part_crc=result.crc))
    listed = bucket.list_parts(key, upload_id).parts
    uploads = bucket.list_multipart_uploads(prefix=case["grant"]["prefix"]).upload_list
    # enable_crc: oss2 combines the parts' CRCs and checks the object's against the store's.
    done = bucket.complete_multipart_upload(key, upload_id, parts)
    head = bucket.head_object(key)
    return {
        "ok": True,
        "etag": done.etag,
        "crc64": done.crc,
        "client_crc64": client_crc.crc,
        "head_etag": head.etag,
        "head_crc64": head.server_crc,
        "head_size": head.content_length,
        "parts": len(parts),
        "listed_parts": [[p.part_number, p.etag, p.size] for p in listed],
        "listed_uploads": [[u.key, u.upload_id] for u in uploads if u.upload_id == upload_id],
    }


def presigned_put(bucket, case):
    with open(case["file"], "rb") as f:
        data = f.read()
    url = bucket.sign_url("PUT", case["key"], 60)
    result = bucket.put_object_with_url(url, data)
    return {"ok": True, "etag": result.etag, "crc64": result.crc, "url": url}


def refusal(call):
    """What the store answered `call`: {"ok": True} or the error's status and code."""
    try:
        call()
        return {"ok": True}
    except oss2.exceptions.OssError as err:
        return {"ok": False, "status": err.status, "code": err.code}


def no_overwrite(bucket, case):
    """Writes the key, then tries to write it again with `x-oss-forbid-overwrite: true`: in one
    PUT, at InitiateMultipartUpload and at Complete; a new key with it; a value OSS refuses."""
    key = case["key"]
    forbid = {"x-oss-forbid-overwrite": "true"}
    bucket.put_object(key, b"first")
    again = refusal(lambda: bucket.put_object(key, b"second", headers=forbid))
    initiate = refusal(lambda: bucket.init_multipart_upload(key, headers=forbid))
    upload_id = bucket.init_multipart_upload(key).upload_id
    part = bucket.upload_part(key, upload_id, 1, b"third")
    parts = [oss2.models.PartInfo(1, part.etag)]
    complete = refusal(
        lambda: bucket.complete_multipart_upload(key, upload_id, parts, headers=forbid)
    )
    fresh = refusal(lambda: bucket.put_object(key + ".new", b"new", headers=forbid))
    allowed = refusal(
        lambda: bucket.put_object(key, b"fourth", headers={"x-oss-forbid-overwrite": "false"})
    )
    bad = refusal(
        lambda: bucket.put_object(key, b"fifth", headers={"x-oss-forbid-overwrite": "abc"})
    )
    return {
        "ok": True,
        "put": again,
        "initiate": initiate,
        "complete": complete,
        "fresh": fresh,
        "allowed": allowed,
        "bad": bad,
    }


def main():
    case = json.load(sys.stdin)
    bucket = bucket_for(case)
    action = {
        "multipart": multipart,
        "presigned_put": presigned_put,
        "no_overwrite": no_overwrite,
    }[case["action"]]
    try:
        answer = action(bucket, case)
    except oss2.exceptions.OssError as err:
        answer = {
            "ok": False,
            "status": err.status,
            "code": err.code,
            "message": err.message,
            "request_id": err.request_id,
        }
    print(json.dumps(answer))


main()
