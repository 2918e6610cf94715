"""Pure tests of the service's shared request handling: one error answer for every failure
(JSON with a sentence, a log line for the unexpected), typed input checks, credentials
masked in output and secrets scrubbed from access logs. No hub, no Docker."""

from __future__ import annotations

import json
import logging

import pytest
from tornado import web
from tornado.testing import AsyncHTTPTestCase

from hub_ext.service.base import UNEXPECTED, APIHandler, Refusal, int_value, scrub_uri, str_field
from hub_ext.service.masking import mask_credentials


class Anonymous(APIHandler):
    async def identify(self):  # no hub here: these handlers answer anyone
        self.current_user = None


class Boom(Anonymous):
    def get(self):
        raise RuntimeError("database exploded at /var/lib/secret-path")


class Refuses(Anonymous):
    def post(self):
        body = self.json_body()
        str_field(body, "course", required=True)
        int_value("limit", body.get("limit", 1), 1, 10)
        raise Refusal(400, "The template is not valid: 100% wrong", problems=["a", "b"])


class ErrorAnswers(AsyncHTTPTestCase):
    def get_app(self):
        return web.Application([("/boom", Boom), ("/refuses", Refuses)])

    def test_an_unexpected_error_is_a_json_500_with_a_log_line_and_no_details(self):
        with self.assertLogs("goldenhub.service", logging.ERROR) as logs:
            r = self.fetch("/boom")
        assert r.code == 500 and json.loads(r.body) == {"status": 500, "message": UNEXPECTED}
        assert b"secret-path" not in r.body and b"Traceback" not in r.body
        assert "GET /boom" in logs.output[0] and "database exploded" in logs.output[0]

    def test_wrong_types_are_a_400_sentence(self):
        for body, message in [({"course": ["lab"]}, '"course" must be a string, not a list'),
                              ({}, '"course" is required'),
                              ({"course": "a", "limit": "abc"}, '"limit" must be a whole number from 1 to 10')]:
            r = self.fetch("/refuses", method="POST", body=json.dumps(body))
            assert r.code == 400 and json.loads(r.body) == {"status": 400, "message": json.loads(r.body)["message"]}
            assert message in json.loads(r.body)["message"]

    def test_a_refusal_carries_its_details_and_percent_signs_survive(self):
        r = self.fetch("/refuses", method="POST", body=json.dumps({"course": "a"}))
        assert json.loads(r.body) == {"status": 400, "message": "The template is not valid: 100% wrong",
                                      "problems": ["a", "b"]}


@pytest.mark.parametrize("given,shown", [
    ("https://deploy:hunter2@git.example.org/c.git", "https://***@git.example.org/c.git"),
    ("https://ghp_abc123@github.com/org/c.git", "https://***@github.com/org/c.git"),
    ("https://user:p@ss@host/x.git", "https://***@host/x.git"),
    ("+  repo: http://a:b@h/x\n-  repo: http://h/x\n", "+  repo: http://***@h/x\n-  repo: http://h/x\n"),
    ("ssh://git@github.com/org/c.git", "ssh://git@github.com/org/c.git"),  # an account, not a secret
    ("ssh://git:pw@host/c.git", "ssh://git:***@host/c.git"),
    ("https://git.example.org/c.git", "https://git.example.org/c.git"),
    ("mail me at someone@example.org", "mail me at someone@example.org"),
])
def test_credentials_in_urls_are_masked(given, shown):
    assert mask_credentials(given) == shown


def test_masking_walks_answers_and_keeps_other_values():
    answer = {"template": {"courseware": {"repo": "https://u:p@h/x"}, "gpus": 1, "groups": ["a"]},
              "revisions": [{"diff": "+repo: https://t@h/x", "number": 2}]}
    assert mask_credentials(answer) == {
        "template": {"courseware": {"repo": "https://***@h/x"}, "gpus": 1, "groups": ["a"]},
        "revisions": [{"diff": "+repo: https://***@h/x", "number": 2}]}


def test_access_log_uris_lose_their_credentials():
    assert scrub_uri("/services/goldenhub/oauth_callback?code=abc&state=def") == \
        "/services/goldenhub/oauth_callback?code=***&state=***"
    assert scrub_uri("/api/x?confirm=lab&token=secret&_xsrf=2|a|b") == "/api/x?confirm=lab&token=***&_xsrf=***"


# --- branding uploads: nothing may hide after the image, no bitmap larger than an icon -------

def _ico_bitmap(width: int, height: int, pixels: int) -> bytes:
    import struct

    image = struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, 32, 0, 0, 0, 0, 0, 0) + b"\0" * pixels
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(image), 22) + image


@pytest.mark.parametrize("kind,data,message", [
    ("logo", "png+trailer", "3 bytes of other data after its end (IEND)"),
    ("logo", "jpeg+trailer", "2 bytes of other data after its end (end-of-image marker)"),
    ("favicon", _ico_bitmap(50000, 50000, 64), "is a bitmap of 50000x50000 pixels"),
    ("favicon", _ico_bitmap(16, 16, 64), "declares 16x16 pixels but holds less data"),
])
def test_crafted_branding_is_refused_with_the_reason(kind, data, message):
    from hub_ext.branding.store import BrandingError, validate_upload
    from tests.helpers import make_jpeg, make_png

    data = {"png+trailer": make_png() + b"zip", "jpeg+trailer": make_jpeg() + b"PK"}.get(data, data)
    with pytest.raises(BrandingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_upload(kind, data)


def test_a_whole_icon_bitmap_is_accepted():
    from hub_ext.branding.store import validate_upload

    assert validate_upload("favicon", _ico_bitmap(16, 16, 16 * 16 * 4)).mime == "image/x-icon"
