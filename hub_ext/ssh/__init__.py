"""SSH and SFTP into one's own environment: one port for the whole platform (a hub service).

Design after jupyterhub/jupyterhub-ssh, built on asyncssh:
- the SSH username is the hub user, the password a hub API token of that same user
  (auth.py: checked against the hub, timing-safe, nothing started for a refused login);
- the user's server is started if it is not running (their only template; otherwise they
  are told to choose one in the browser), with a bounded wait (auth.py: ensure_server);
- a shell or command is a Jupyter terminal of THEIR server (shell.py), so it runs inside
  their own container as them;
- SFTP runs inside their container as uid 1000 (sftp.py: `docker exec ... sftp-server`),
  never on the host, so no symlink of theirs reaches a host file;
- limits (server.py): auth attempts per connection, connections per user and in total,
  idle time, username/password/command sizes; a host key generated once into the state dir.
Settings (config.py): `ssh: {enabled, port}` in state/goldenhub.yaml, GOLDENHUB_SSH=off,
GOLDENHUB_SSH_PORT.
"""
