"""Uploads with Alibaba's oss2 SDK and an upload callback, as OSS's documentation shows it.

Reads one case as JSON on stdin: {"grant": <Ferry grant with its callback spec>, "action":
"put" | "multipart", "key": ..., "file": ..., "part_size": ..., "vars": {"x:upload_id": ...}}.
The callback parameter and its custom variables go in the x-oss-callback and x-oss-callback-var
headers (base64 JSON), which oss2 signs like any x-oss- header. Prints one JSON line: the
status, the callback's answer the store relayed, and the ETag.
"""

import base64
import json
import sys

import loopback

import oss2
import oss2.exceptions

oss2.defaults.request_retries = 0
oss2.defaults.connect_timeout = 20


def b64(value):
    return base64.b64encode(json.dumps(value).encode()).decode()


def callback_headers(case):
    spec = case["grant"]["callback"]
    callback = {
        "callbackUrl": spec["url"],
        "callbackBody": spec["body"],
        "callbackBodyType": spec["body_type"],
    }
    variables = dict(spec.get("vars", {}))
    variables.update(case["vars"])
    return {"x-oss-callback": b64(callback), "x-oss-callback-var": b64(variables)}


def bucket_for(grant):
    auth = oss2.StsAuth(
        grant["access_key_id"],
        grant["secret_access_key"],
        grant["security_token"],
        auth_version=oss2.AUTH_VERSION_4,
    )
    return oss2.Bucket(auth, grant["endpoint"], grant["bucket"], is_cname=True, region=grant["region"])


def answer(result):
    return {
        "ok": True,
        "status": result.status,
        "etag": result.etag,
        "answer": result.resp.read().decode(),
        "sent_callback": "x-oss-callback" in result.resp.response.request.headers,
    }


def put(bucket, case):
    with open(case["file"], "rb") as f:
        data = f.read()
    return answer(bucket.put_object(case["key"], data, headers=callback_headers(case)))


def multipart(bucket, case):
    key = case["key"]
    upload_id = bucket.init_multipart_upload(key).upload_id
    parts = []
    for number, data in enumerate(loopback.parts_of(case["file"], case["part_size"]), 1):
        result = bucket.upload_part(key, upload_id, number, data)
        parts.append(oss2.models.PartInfo(number, result.etag))
    done = bucket.complete_multipart_upload(key, upload_id, parts, headers=callback_headers(case))
    return answer(done)


def main():
    case = json.load(sys.stdin)
    bucket = bucket_for(case["grant"])
    action = {"put": put, "multipart": multipart}[case["action"]]
    try:
        result = action(bucket, case)
    except oss2.exceptions.OssError as err:
        result = {"ok": False, "status": err.status, "code": err.code, "message": err.message}
    print(json.dumps(result))


main()
