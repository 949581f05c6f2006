# A real Azurite for a whole .bats file: `load azurite` at the top of the file defines its
# setup_file and teardown_file (the tests' own setup still loads helpers).
# start_azurite: a real Azurite on a free port for the file's tests (exports AZURITE_PORT, AZURITE_PID, PYTHON).
start_azurite() {
  AZURITE_BIN="$REPO_ROOT/node_modules/.bin/azurite-blob"
  PYTHON="$REPO_ROOT/.venv/bin/python"
  # Skipped here, the suite's pytest entry point fails in CI (tests/scripts/test_bats.py).
  [ -x "$AZURITE_BIN" ] || skip "Azurite is not installed (npm ci)"
  [ -x "$PYTHON" ] || skip "the virtualenv is missing (.venv)"
  AZURITE_PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --inMemoryPersistence \
    --skipApiVersionCheck --silent --disableTelemetry >"$BATS_FILE_TMPDIR/azurite.log" 2>&1 3>&- &
  AZURITE_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$AZURITE_PORT/" && break
    sleep 0.1
  done
  curl -s -o /dev/null "http://127.0.0.1:$AZURITE_PORT/" || { echo "Azurite did not start:" >&2; cat "$BATS_FILE_TMPDIR/azurite.log" >&2; false; }
  export AZURITE_PORT AZURITE_PID PYTHON
}

stop_azurite() {
  if [[ -n "${AZURITE_PID:-}" ]]; then kill "$AZURITE_PID" 2>/dev/null || true; fi
}

setup_file() {
  load helpers
  start_azurite
}

teardown_file() {
  stop_azurite
}
