"""Builds the signed request each vendor's SDK would send for one broker call, without sending it.

Reads a JSON list of cases on stdin, prints a JSON list of requests on stdout:
`{"method", "url", "headers": [[name, value]...], "body"}` per case. Each case gives the broker
(`sts` (botocore), `aliyun`, `huawei` or `jdcloud`), the long-term key, the endpoint, the call's inputs, and the
time and nonce the SDK must use (its clock and nonce functions are patched; nothing else is).
The request is captured where the SDK hands it to its HTTP library, so nothing leaves the machine.
"""

import datetime
import json
import sys


class Captured(Exception):
    """Raised in place of sending: carries the request the SDK built."""

    def __init__(self, request):
        super().__init__("captured")
        self.request = request


def sts(case):
    import botocore.auth
    import botocore.session

    stamp = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc)
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: stamp.replace(tzinfo=None)
    session = botocore.session.get_session()
    client = session.create_client(
        "sts",
        region_name=case["region"],
        endpoint_url=case["endpoint"],
        aws_access_key_id=case["access_key_id"],
        aws_secret_access_key=case["secret"],
    )

    def capture(request, **kwargs):
        body = request.body
        raise Captured(
            {
                "method": request.method,
                "url": request.url,
                "headers": sorted(
                    [k, v.decode() if isinstance(v, bytes) else v] for k, v in request.headers.items()
                ),
                "body": body.decode() if isinstance(body, bytes) else (body or ""),
            }
        )

    client.meta.events.register("before-send.sts.AssumeRole", capture)
    try:
        client.assume_role(
            RoleArn=case["role_arn"],
            RoleSessionName=case["session_name"],
            Policy=case["policy"],
            DurationSeconds=case["duration"],
        )
    except Captured as done:
        return done.request
    raise RuntimeError("sts: the SDK sent nothing")


def aliyun(case):
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.http import http_response
    from aliyunsdkcore.utils import parameter_helper
    from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest

    stamp = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc)
    parameter_helper.get_iso_8061_date = lambda: stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    parameter_helper.get_uuid = lambda: case["nonce"]

    def capture(self):
        raise Captured(
            {
                "method": self.get_method(),
                "url": "%s://%s%s" % (case["scheme"], self.get_host(), self.get_url()),
                "headers": sorted([k, v] for k, v in self.get_headers().items()),
                "body": (self.get_body() or b"").decode() if isinstance(self.get_body(), bytes)
                else (self.get_body() or ""),
            }
        )

    http_response.HttpResponse.get_response_object = capture
    client = AcsClient(case["access_key_id"], case["secret"], case["region"], auto_retry=False)
    request = AssumeRoleRequest()
    request.set_endpoint(case["host"])
    request.set_protocol_type(case["scheme"])
    request.set_RoleArn(case["role_arn"])
    request.set_RoleSessionName(case["session_name"])
    request.set_Policy(case["policy"])
    request.set_DurationSeconds(case["duration"])
    try:
        client.do_action_with_exception(request)
    except Captured as done:
        return done.request
    raise RuntimeError("aliyun: the SDK sent nothing")


def huawei(case):
    from huaweicloudsdkcore.auth.credentials import GlobalCredentials
    from huaweicloudsdkcore.http.http_client import HttpClient
    from huaweicloudsdkcore.signer import signer
    from huaweicloudsdkiam.v3 import IamClient
    from huaweicloudsdkiam.v3 import model

    stamp = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc)

    class FixedClock(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return stamp.replace(tzinfo=None)

    signer.datetime = FixedClock
    # The SDK signs every header it sends, its own User-Agent included; Ferry sends none, so
    # the SDK's is taken out before signing (only the header list changes, not the signer).
    from huaweicloudsdkcore import client as core_client

    parse_headers = core_client.Client._parse_header_params

    def without_agent(self, *args):
        headers = parse_headers(self, *args)
        headers.pop("User-Agent", None)
        return headers

    core_client.Client._parse_header_params = without_agent

    def capture(self, request):
        body = request.body
        raise Captured(
            {
                "method": request.method,
                "url": request.url,
                "headers": sorted([k, v] for k, v in request.header_params.items()),
                "body": body.decode() if isinstance(body, bytes) else (body or ""),
            }
        )

    HttpClient.do_request_sync = capture
    credentials = GlobalCredentials(case["access_key_id"], case["secret"], case.get("domain_id"))
    client = (
        IamClient.new_builder()
        .with_credentials(credentials)
        .with_endpoints([case["endpoint"]])
        .build()
    )
    statements = [
        model.ServiceStatement(
            action=s["Action"], effect=s["Effect"], condition=s.get("Condition"),
            resource=s["Resource"],
        )
        for s in case["policy"]["Statement"]
    ]
    policy = model.ServicePolicy(version=case["policy"]["Version"], statement=statements)
    if case.get("agency_name"):
        identity = model.AgencyAuthIdentity(
            methods=["assume_role"],
            assume_role=model.IdentityAssumerole(
                agency_name=case["agency_name"],
                domain_name=case.get("agency_domain_name"),
                domain_id=case.get("agency_domain_id"),
                duration_seconds=case["duration"],
                session_user=model.AssumeroleSessionuser(name=case["session_name"]),
            ),
            policy=policy,
        )
        body = model.CreateTemporaryAccessKeyByAgencyRequestBody(auth=model.AgencyAuth(identity=identity))
        call = client.create_temporary_access_key_by_agency
        request = model.CreateTemporaryAccessKeyByAgencyRequest(body=body)
    else:
        identity = model.TokenAuthIdentity(
            methods=["token"],
            token=model.IdentityToken(duration_seconds=case["duration"]),
            policy=policy,
        )
        body = model.CreateTemporaryAccessKeyByTokenRequestBody(auth=model.TokenAuth(identity=identity))
        call = client.create_temporary_access_key_by_token
        request = model.CreateTemporaryAccessKeyByTokenRequest(body=body)
    try:
        call(request)
    except Captured as done:
        return done.request
    raise RuntimeError("huawei: the SDK sent nothing")


def jdcloud(case):
    import uuid

    from jdcloud_sdk.core import jdcloudclient, signer
    from jdcloud_sdk.core.config import Config
    from jdcloud_sdk.core.credential import Credential
    from jdcloud_sdk.core.logger import FATAL, Logger
    from jdcloud_sdk.services.sts.apis.AssumeRoleRequest import AssumeRoleParameters, AssumeRoleRequest
    from jdcloud_sdk.services.sts.client.StsClient import StsClient
    from jdcloud_sdk.services.sts.models.AssumeRoleInfo import AssumeRoleInfo

    stamp = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc).replace(tzinfo=None)
    signer.Signer._Signer__now = lambda self: stamp
    signer.uuid = type("FixedNonce", (), {"uuid4": staticmethod(lambda: case["nonce"])})

    def capture(method, url, data=None, headers=None, timeout=None):
        raise Captured(
            {
                "method": method,
                "url": url,
                "headers": sorted([k, v] for k, v in headers.items()),
                "body": data or "",
            }
        )

    jdcloudclient.requests = type("NoNetwork", (), {"request": staticmethod(capture)})
    scheme, host = case["endpoint"].split("://", 1)
    # The SDK's default logger prints requests (and tracebacks) to stdout, where the answer goes.
    quiet = Logger(FATAL - 1)
    config = Config(host, scheme=scheme)
    client = StsClient(Credential(case["access_key_id"], case["secret"]), config, quiet)
    info = AssumeRoleInfo(case["role_arn"], case["session_name"], case["policy"], case["duration"])
    try:
        client.send(AssumeRoleRequest(AssumeRoleParameters(info)))
    except Captured as done:
        return done.request
    raise RuntimeError("jdcloud: the SDK sent nothing")


def main():
    cases = json.load(sys.stdin)
    builders = {"sts": sts, "aliyun": aliyun, "huawei": huawei, "jdcloud": jdcloud}
    out = [builders[case["broker"]](case) for case in cases]
    json.dump(out, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
