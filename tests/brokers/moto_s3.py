"""boto3 against the moto server the `sts` broker test runs: creates the bucket before the test
and reads an object back after it. Reads one JSON command on stdin, prints one JSON answer.

`{"op": "create_bucket", "endpoint", "bucket"}` -> `{"created": bucket}`
`{"op": "read", "endpoint", "bucket", "key", "path"}` -> `{"size", "etag", "same": bool}` (the
object's bytes compared with the file at `path`)
"""

import json
import sys

import boto3
from botocore.config import Config


def client(endpoint):
    # moto accepts any key; these never leave the machine.
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="moto-admin",
        aws_secret_access_key="moto-admin-secret",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def main():
    command = json.load(sys.stdin)
    s3 = client(command["endpoint"])
    if command["op"] == "create_bucket":
        s3.create_bucket(Bucket=command["bucket"])
        print(json.dumps({"created": command["bucket"]}))
    elif command["op"] == "read":
        got = s3.get_object(Bucket=command["bucket"], Key=command["key"])
        data = got["Body"].read()
        with open(command["path"], "rb") as f:
            same = f.read() == data
        print(json.dumps({"size": len(data), "etag": got["ETag"].strip('"'), "same": same}))
    else:
        raise SystemExit("unknown op %r" % command["op"])


if __name__ == "__main__":
    main()
