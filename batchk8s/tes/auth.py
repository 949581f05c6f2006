"""The credential TESK's authenticating proxy demands, as node-side shell (k8sresources/tesk/35-auth-proxy.yaml).

The token lives in the cluster, in the Secret `tesk/tesk-api-token` (key `token`). Scripts that run
on a node (the relay, the tesk-deploy and tesk-verify workflows) read it there with the admin
kubeconfig and hand it to curl through a config read from a file descriptor: it never appears in a
command line, a task's environment, a log or Batch's task definition. The direct transport sends
the same token from the TES_TOKEN setting.
"""

from __future__ import annotations

SECRET = "tesk-api-token"
SECRET_KEY = "token"
NAMESPACE = "tesk"
# Exit code of a node script that found no token in the cluster (TESK not deployed, or its Secret deleted).
NO_TOKEN_EXIT = 3

# Defines `tes_curl`: curl with `Authorization: Bearer <token>`. `printf` is a bash builtin, so the token
# reaches curl through /dev/fd/N without ever being a process argument.
TES_CURL = (
    f'tes_token="$(kubectl -n {NAMESPACE} get secret {SECRET} -o jsonpath=\'{{.data.{SECRET_KEY}}}\' '
    '| base64 -d)" || tes_token=""\n'
    'if [ -z "$tes_token" ]; then\n'
    f'  echo "no TES API token in the cluster: the Secret {NAMESPACE}/{SECRET} is missing (run the tesk-deploy'
    ' workflow)" >&2\n'
    f'  exit {NO_TOKEN_EXIT}\n'
    'fi\n'
    'tes_curl() { curl -K <(printf \'header = "Authorization: Bearer %s"\\n\' "$tes_token") "$@"; }\n'
)

_SECRET_EXISTS = f"kubectl -n {NAMESPACE} get secret {SECRET} >/dev/null 2>&1"


def _put_secret(verb: str) -> str:
    """Shell that writes the Secret with a new random 43-character token (about 256 bits) through
    `kubectl VERB -f -`: the value is generated on the node and reaches kubectl on stdin. `create` and
    `replace`, never `apply`, which would copy the value into the last-applied-configuration annotation,
    readable by anyone who may read the Secret's metadata."""
    return ('raw="$(head -c 48 /dev/urandom | base64 | tr -dc \'A-Za-z0-9\')"\n'
            "printf 'apiVersion: v1\\nkind: Secret\\nmetadata:\\n  name: %s\\n  namespace: %s\\ntype: Opaque\\n"
            "stringData:\\n  %s: %s\\n' "
            f'{SECRET} {NAMESPACE} {SECRET_KEY} "${{raw:0:43}}" | kubectl {verb} -f -\n'
            "unset raw\n")


# The Secret unless it exists (a token rotated since is kept): what tesk-deploy runs.
ENSURE_SECRET = (f"if ! {_SECRET_EXISTS}; then\n{_put_secret('create')}"
                 f'echo "created the Secret {NAMESPACE}/{SECRET} with a new random token"\nfi\n')

# A new token in place of the old one: what tesk-rotate-token runs before restarting the proxy.
ROTATE_SECRET = (f"if {_SECRET_EXISTS}; then verb=replace; else verb=create; fi\n" + _put_secret('"$verb"') +
                 f'echo "the Secret {NAMESPACE}/{SECRET} holds a new random token"\n')
