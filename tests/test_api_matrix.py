"""Every service endpoint: no token → 401, a student's token → 403 where a scope is
needed, the right scope → not 401/403; forms need XSRF; every answer carries nosniff and
a CSP."""

import pytest

from tests.test_service import ServiceClient, user_token

pytestmark = pytest.mark.integration

# (method, path, json body or raw bytes, scope needed: None = any logged-in user)
ENDPOINTS = [
    ("GET", "/", None, None),
    ("GET", "/templates", None, None),
    ("POST", "/templates", {"course": "m", "template": {"id": "m1"}}, "templates"),
    ("PATCH", "/templates/no-such", {"template": {}}, "templates"),
    ("DELETE", "/templates/no-such?confirm=no-such", None, "templates"),
    ("POST", "/templates/no-such/disable", {}, "templates"),
    ("POST", "/resets", {"course": "lab", "user": "matrix-other"}, "reset"),
    ("GET", "/backups?user=matrix-other", None, "reset"),
    ("POST", "/backups/no-such/restore", {}, "reset"),
    ("DELETE", "/backups/no-such?confirm=no-such", None, "reset"),
    ("GET", "/audit", None, "reset"),
    ("GET", "/branding/logo", None, None),
    ("PUT", "/branding/logo", b"not an image", "branding"),
    ("DELETE", "/branding/favicon", None, "branding"),
]


@pytest.fixture(scope="module")
def tokens(hub):
    hub.ensure_user("matrix-other")
    return {"student": user_token(hub, "matrix-student"), "admin": user_token(hub, "admin")}


def send(client, method, path, body):
    if isinstance(body, bytes):
        return client.call(method, path, data=body)
    return client.call(method, path, json=body) if body is not None else client.call(method, path)


@pytest.mark.parametrize("method,path,body,scope", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_endpoint_authentication_and_scopes(hub, tokens, method, path, body, scope):
    r = send(ServiceClient(hub), method, path, body)
    assert r.status_code == 401 and r.json() == {"status": 401, "message": r.json()["message"]}
    student = send(ServiceClient(hub, tokens["student"]), method, path, body)
    if scope:
        assert student.status_code == 403, student.text
        assert f"custom:goldenhub:{scope}" in student.json()["message"]
    else:
        assert student.status_code == 200, student.text
    admin = send(ServiceClient(hub, tokens["admin"]), method, path, body)
    assert admin.status_code not in (401, 403, 500), admin.text
    for response in (r, student, admin):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Content-Type"].startswith("application/json")


def test_instructor_of_another_course_is_refused(hub):
    teacher = ServiceClient(hub, user_token(hub, "sec-teacher"))
    hub.ensure_user("matrix-other")
    r = teacher.call("POST", "/resets", json={"course": "lab", "user": "matrix-other"})
    assert r.status_code == 403
    r = teacher.call("POST", "/resets", json={"course": "lab", "all": True, "confirm": "lab"})
    assert r.status_code in (200, 403)  # 200 only if the course has no students with homes
    if r.status_code == 200:
        assert r.json()["results"] == []


def test_forms_need_the_xsrf_token(hub):
    session = hub.login("xsrf-student")
    page = session.get(f"{hub.url}/services/goldenhub/", timeout=30)  # OAuth login to the service
    assert page.status_code == 200 and page.headers["X-Content-Type-Options"] == "nosniff"
    r = session.post(f"{hub.url}/services/goldenhub/reset?course=lab", data={"confirm": "lab"}, timeout=30)
    assert r.status_code == 403 and "_xsrf" in r.text
    assert "Traceback" not in r.text
