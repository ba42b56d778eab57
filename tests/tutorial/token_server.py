"""An app server written the way the vendors' tutorials write them: it checks who asks (HTTP
Basic against its own user list), fetches short-lived credentials with its own long-term
account, and answers them in the vendor's shape. Ferry must sign in to it and upload with what it
hands out, knowing nothing of it but a connection profile.

Its "STS" is the Ferry app server it is given (the tutorials call AssumeRole with a RAM or IAM
key; here a service account signs in and asks `POST /api/v1/grants`), so the credentials are real
ones the embedded store enforces.

Configuration: one JSON object on stdin:
  {"shape": "aliyun_sts" | "huawei_workspace", "sts": "<ferry api url>", "provider": "oss" | "obs",
   "account": ["name", "password"], "users": {"alice": "password", ...},
   "directory": "<huawei: the directory to answer>" (default: the grant's prefix),
   "policy_prefix": "<huawei: the prefix the policy allows>" (default: the directory),
   "method": "GET" | "POST"}
It prints `listening http://127.0.0.1:<port>` and serves until stdin's parent kills it. Only
loopback is reached.
"""

import base64
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = json.loads(sys.stdin.readline())
LOCK = threading.Lock()
SESSION = {}


def call_sts(path, body, token=None):
    request = urllib.request.Request(
        CONFIG["sts"].rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=20) as answer:
        return json.loads(answer.read())


def credentials():
    """The service account's temporary credentials (signing in once, as tutorials cache)."""
    with LOCK:
        if "token" not in SESSION:
            name, password = CONFIG["account"]
            SESSION["token"] = call_sts(
                "/api/v1/sessions", {"username": name, "password": password}
            )["token"]
        token = SESSION["token"]
    return call_sts("/api/v1/grants", {"provider": CONFIG["provider"]}, token)


def aliyun_answer(grant):
    return {
        "StatusCode": 200,
        "AccessKeyId": grant["access_key_id"],
        "AccessKeySecret": grant["secret_access_key"],
        "SecurityToken": grant["security_token"],
        "Expiration": grant["expires_at"],
    }


def huawei_answer(grant, user):
    directory = CONFIG.get("directory") or (grant["prefix"] + user + "/")
    allowed = CONFIG.get("policy_prefix") or directory
    return {
        "server_end_point": grant["endpoint"],
        "bucket_name": grant["bucket"],
        "directory": directory,
        "ak": grant["access_key_id"],
        "sk": grant["secret_access_key"],
        "security_token": grant["security_token"],
        "expires_at": grant["expires_at"],
        "policy": {
            "version": "1.1",
            "statement": [
                {
                    "effect": "Allow",
                    "action": ["obs:object:PutObject", "obs:object:AbortMultipartUpload"],
                    "resource": ["obs:*:*:object:%s/%s*" % (grant["bucket"], allowed)],
                }
            ],
        },
    }


def refusal(shape):
    if shape == "huawei_workspace":
        return {"error_code": "WKS.00081102", "error_msg": "User does not have permission."}
    return {"StatusCode": 401, "ErrorCode": "Unauthorized", "ErrorMessage": "wrong name or password"}


class Handler(BaseHTTPRequestHandler):
    def user(self):
        header = self.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            name, password = base64.b64decode(header[6:]).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return None
        return name if CONFIG["users"].get(name) == password else None

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.split("?")[0] != "/sts":
            return self.answer(404, {"error": "not found"})
        user = self.user()
        if user is None:
            return self.answer(401, refusal(CONFIG["shape"]))
        grant = credentials()
        if CONFIG["shape"] == "huawei_workspace":
            return self.answer(200, huawei_answer(grant, user))
        return self.answer(200, aliyun_answer(grant))

    def do_GET(self):
        if CONFIG.get("method", "GET") != "GET":
            return self.answer(405, {"error": "method"})
        self.serve()

    def do_POST(self):
        if CONFIG.get("method", "GET") != "POST":
            return self.answer(405, {"error": "method"})
        self.serve()

    def log_message(self, fmt, *args):
        sys.stderr.write("tutorial server: " + (fmt % args) + "\n")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening http://127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
