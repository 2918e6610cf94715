"""Files an operator installs: `goldenhub install-service` (a systemd unit that runs
`goldenhub up` in the foreground) and `goldenhub tls self-signed` (a trial HTTPS pair).

Rules: a name given on the command line is full-matched and bounded before anything is
written; an existing key pair is never overwritten without --force; the private key is
created 0600 (never readable, even for a moment, by anyone else).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import sys
from pathlib import Path

from hub_ext import paths
from hub_ext.i18n import _

UNIT_PATH = Path("/etc/systemd/system/goldenhub.service")
ENV_FILE = "/etc/goldenhub.env"
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
TLS_DIR = "tls"
CERT_FILE, KEY_FILE = "goldenhub.crt", "goldenhub.key"
CERT_DAYS = 90  # a trial certificate; a real one comes from the campus CA or Let's Encrypt


def goldenhub_command() -> str:
    """This checkout's `goldenhub` (the one in the virtual environment running now)."""
    script = Path(sys.executable).parent / "goldenhub"
    return str(script) if script.exists() else f"{sys.executable} -m hub_ext.cli"


def unit_text(user: str) -> str:
    venv_bin = Path(sys.executable).parent
    return f"""\
# goldenhub: the hub, its proxy and service, and the sample git server, as one service.
# Written by `goldenhub install-service`. Settings: {ENV_FILE} (GOLDENHUB_* lines, optional).
[Unit]
Description=goldenhub teaching platform (JupyterHub)
Documentation=file://{paths.REPO_ROOT / 'README.md'}
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
Type=simple
User={user}
WorkingDirectory={paths.REPO_ROOT}
EnvironmentFile=-{ENV_FILE}
Environment=PATH={venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart={goldenhub_command()} up
Restart=on-failure
RestartSec=5
# SIGTERM to the hub only: it stops its proxy and service itself; what is left then goes.
KillMode=mixed
TimeoutStopSec=90

[Install]
WantedBy=multi-user.target
"""


def install_service(args: argparse.Namespace) -> int:
    if not USER_NAME.fullmatch(args.user):
        print("goldenhub install-service: " + _("%(value)s is not a user name (lower-case letters, digits, _ and -, "
                                              "at most 32). Nothing was written.", value=repr(args.user[:40])),
              file=sys.stderr)
        return 2
    output = Path(args.output)
    if not output.parent.is_dir():
        print("goldenhub install-service: " + _("the directory %(directory)s does not exist. Nothing was written.",
                                              directory=output.parent), file=sys.stderr)
        return 2
    try:
        output.write_text(unit_text(args.user), encoding="utf-8")
    except OSError as e:
        print("goldenhub install-service: " + _("cannot write %(file)s (%(problem)s); run it as root or pass --output "
                                              "PATH. Nothing was written.", file=output, problem=e.strerror),
              file=sys.stderr)
        return 1
    unit = output.name
    print(_("wrote the systemd unit %(file)s (runs `goldenhub up` as %(user)s; settings in %(settings)s)",
            file=output, user=args.user, settings=ENV_FILE))
    if output.parent != UNIT_PATH.parent:
        print(_("next: copy it to %(file)s, then:", file=UNIT_PATH.parent / unit))
    else:
        print(_("next:"))
    print(f"  systemctl daemon-reload && systemctl enable --now {output.stem}")
    return 0


def self_signed(host: str, days: int = CERT_DAYS) -> tuple[bytes, bytes]:
    """A new (certificate PEM, private key PEM) for `host`, localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for name in dict.fromkeys([host, "localhost", "127.0.0.1"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "goldenhub trial")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOST_NAME.fullmatch(host))


def tls_self_signed(args: argparse.Namespace) -> int:
    if not valid_host(args.host):
        print("goldenhub tls self-signed: " + _("%(value)s is not a host name or IP address. Nothing was written.",
                                              value=repr(args.host[:60])), file=sys.stderr)
        return 2
    folder = paths.state_dir() / TLS_DIR
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if (cert_path.exists() or key_path.exists()) and not args.force:
        print("goldenhub tls self-signed: " + _("a pair already exists in %(directory)s; pass --force to replace it. "
                                              "Nothing was written.", directory=folder), file=sys.stderr)
        return 1
    cert, key = self_signed(args.host)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    cert_path.write_bytes(cert)
    print(_("wrote a self-signed certificate for %(host)s (valid %(days)d days, for a trial: browsers warn)",
            host=args.host, days=CERT_DAYS))
    print(_("  certificate: %(file)s", file=cert_path))
    print(_("  key:         %(file)s (0600)", file=key_path))
    print(_("Use it: in %(file)s (or the environment of `goldenhub up`):", file=ENV_FILE))
    print(f"  GOLDENHUB_SSL_CERT={cert_path}\n  GOLDENHUB_SSL_KEY={key_path}\n  GOLDENHUB_BIND_URL=https://0.0.0.0:443")
    print(_("or in %(file)s: ssl_cert: %(cert)s and ssl_key: %(key)s;", file=paths.state_dir() / "goldenhub.yaml",
            cert=cert_path, key=key_path))
    print(_("then restart the hub (`goldenhub down && goldenhub up --detach`)."))
    return 0


def add_parsers(commands) -> None:
    p = commands.add_parser("install-service", help=_("write a systemd unit that runs `goldenhub up`"))
    p.add_argument("--output", default=str(UNIT_PATH), help=_("where to write it (default: %(file)s)", file=UNIT_PATH))
    p.add_argument("--user", default="root", help=_("the user it runs as; it needs Docker access (default: root)"))
    p.set_defaults(run=install_service)
    p = commands.add_parser("tls", help=_("HTTPS helpers"))
    sub = p.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    p = sub.add_parser("self-signed", help=_("generate a self-signed certificate and key for a trial into <state>/tls/"))
    p.add_argument("--host", default="localhost", help=_("the name (or IP address) students will use (default: localhost)"))
    p.add_argument("--force", action="store_true", help=_("replace an existing pair"))
    p.set_defaults(run=tls_self_signed)
