#!/bin/sh
# Writes ../v8.sqlite.sql and ../v8.postgres.sql: the databases hookwise at
# schema version 8 leaves behind (see main.go), dumped as SQL. It builds
# main.go against that version's source, taken from git (the commit before
# migration 009 was added), so that version's own code writes every row.
#
# Needs git, go, sqlite3, psql and pg_dump, and a PostgreSQL server:
#
#   HOOKWISE_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
#       internal/store/testdata/v8fixture/generate.sh
#
# Each dump starts with "-- fixture now: <Unix ms>": the moment the dump
# stands for, a minute after the last write. The tests' loader
# (storetest.LoadFixture) moves every stored time by the same amount, so
# that the moment is the test's start.
set -eu
: "${HOOKWISE_TEST_DATABASE_URL:?set it to a PostgreSQL server to write the PostgreSQL dump with}"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
added=$(git -C "$repo" log --format=%H --diff-filter=A -- internal/store/migrations/sqlite/009_author.sql | tail -1)
work=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
	psql -q "$HOOKWISE_TEST_DATABASE_URL" -c 'DROP SCHEMA IF EXISTS hw_fixture_v8 CASCADE' 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/src"
git -C "$repo" archive "$added^" | tar -x -C "$work/src"
mkdir -p "$work/src/internal/store/testdata/v8fixture"
cp "$here/main.go" "$work/src/internal/store/testdata/v8fixture/"
(cd "$work/src" && go build -o "$work/v8fixture" ./internal/store/testdata/v8fixture)

# start runs the generator on database $1 and waits until it is ready.
start() {
	"$work/v8fixture" -db "$1" >"$work/out" &
	pid=$!
	while ! grep -q '^ready$' "$work/out"; do
		kill -0 "$pid" || { echo "v8fixture failed" >&2; exit 1; }
		sleep 0.2
	done
	now=$(( $(date +%s%3N) + 60000 ))
}

# stop kills the generator, as a crash would.
stop() {
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

start "$work/hookwise.db"
{
	echo "-- fixture now: $now"
	sqlite3 -cmd '.timeout 5000' "$work/hookwise.db" .dump
} >"$here/../v8.sqlite.sql"
stop

psql -q "$HOOKWISE_TEST_DATABASE_URL" -c 'DROP SCHEMA IF EXISTS hw_fixture_v8 CASCADE' -c 'CREATE SCHEMA hw_fixture_v8'
case "$HOOKWISE_TEST_DATABASE_URL" in
*\?*) url="$HOOKWISE_TEST_DATABASE_URL&search_path=hw_fixture_v8" ;;
*) url="$HOOKWISE_TEST_DATABASE_URL?search_path=hw_fixture_v8" ;;
esac
start "$url"
# The dump loads into whatever schema the loading connection's search_path
# names: schema names, the search_path reset, psql's meta-commands and
# pg_dump's comments (which name the schema) go.
{
	echo "-- fixture now: $now"
	pg_dump --schema=hw_fixture_v8 --no-owner --no-privileges --inserts "$HOOKWISE_TEST_DATABASE_URL" |
		sed -e 's/hw_fixture_v8\.//g' \
			-e '/^CREATE SCHEMA /d' \
			-e '/^SELECT pg_catalog.set_config(.search_path/d' \
			-e '/^\\/d' \
			-e '/^--/d' |
		cat -s
} >"$here/../v8.postgres.sql"
stop
