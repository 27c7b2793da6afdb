#!/usr/bin/env bash
# Validates the deployment files in deploy/ with whatever tools this machine
# has, skipping (with a message) what it cannot run. Run from anywhere:
#
#   bash deploy/validate.sh
#
# Exits non-zero if any check that ran failed. The checks of the files
# themselves are a Go command in the module, cmd/deploycheck (built here,
# tested with the rest of the Go code); this script builds it and hookwise,
# starts what the checks need, and runs them beside the external tools.
# Steps:
#   checker     go build ./cmd/deploycheck
#   compose     docker compose config (v2), and the same load with compose-go
#               cross-checked with nginx.conf and prometheus.yml
#   hookwise    the Dockerfile's build flags and final stage; its build
#               command (a static binary); the binary alone in an empty root
#               as uid 65532, as in the image; `hookwise check-config` on the
#               compose settings
#   nginx       nginx -t, then a smoke test through nginx to real hookwise
#               processes on loopback (signatures, de-duplication, body size,
#               retry past a dead replica, /metrics hidden, admin token)
#   prometheus  promtool check config / check rules / test rules; every
#               metric the alerts name is one hookwise defines
#   grafana     the dashboard's JSON, datasource and queries (parsed by
#               promtool); every metric it names is one hookwise defines
#   k8s         each manifest decoded strictly into the Kubernetes API types,
#               with cross-reference checks; check-config on the ConfigMap
#               and the example Secret; kubectl kustomize
#   docker      docker build, only where a Docker engine runs
#
# Everything it starts listens on loopback and is stopped when it exits.
#
# Environment:
#   VERBOSE=1                    show the output of passing checks too
#   HOOKWISE_SRC                 build hookwise, and look for the metrics it
#                                defines, in this tree instead of the
#                                repository (e.g. an export of a commit)
#   HOOKWISE_SMOKE_DATABASE_URL  a postgres:// URL: the smoke test then runs
#                                three instances on it instead of one on SQLite
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
deploy="$root/deploy"
src="${HOOKWISE_SRC:-$root}"
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

tmp="$(mktemp -d)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
# forget_pid PID: a process already waited for is not cleanup's to kill.
forget_pid() {
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

passed=0 failed=0 skipped=0
failures=()
pass() { echo "  PASS: $*"; passed=$((passed + 1)); }
fail() { echo "  FAIL: $*"; failed=$((failed + 1)); failures+=("$*"); }
skip() { echo "  SKIP: $*"; skipped=$((skipped + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }
# run NAME CMD...: runs CMD with its output in a log, shown on failure (and
# always with VERBOSE=1).
run() {
	local name=$1 log
	shift
	log="$tmp/log.$((passed + failed + skipped))"
	if "$@" >"$log" 2>&1; then
		pass "$name"
		if [ -n "${VERBOSE:-}" ]; then sed 's/^/        /' "$log"; fi
	else
		fail "$name"
		sed 's/^/        /' "$log" | tail -n 40
	fi
}

# free_port VAR: sets VAR to a loopback TCP port nobody uses now: below the
# kernel's range for outgoing connections (whose local ports a bind would
# collide with), not one handed out before in this run, and with no socket
# on it at all. (Not $(free_port): the subshell would forget what it gave.)
given=" "
free_port() {
	local p low=32768
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then read -r low _ </proc/sys/net/ipv4/ip_local_port_range; fi
	[ "$low" -gt 12000 ] || low=32768
	for _ in $(seq 1 100); do
		p=$((10000 + RANDOM % (low - 10000)))
		[[ $given == *" $p "* ]] && continue
		if have ss; then
			[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ] || continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		given+="$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	return 1
}

# wait_http URL CODE SECONDS: polls until URL answers CODE.
wait_http() {
	for _ in $(seq 1 $(($3 * 5))); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# is_static BINARY: no ELF interpreter, so it runs on scratch.
is_static() {
	local out
	if have readelf; then
		out="$(readelf -l "$1" 2>&1)" || return 1
		[[ $out != *INTERP* ]]
	else
		out="$(go version -m "$1" 2>&1)" || return 1
		[[ $out == *CGO_ENABLED=0* ]]
	fi
}

# ---------------------------------------------------------------------------
echo "== the Go checker (cmd/deploycheck)"
deploycheck=""
if ! have go; then
	skip "no Go toolchain: the checker is not built, and the checks it makes are skipped"
elif (cd "$root" && go build -o "$tmp/deploycheck" ./cmd/deploycheck) >"$tmp/deploycheck.log" 2>&1; then
	pass "checker built (go build ./cmd/deploycheck)"
	deploycheck="$tmp/deploycheck"
else
	fail "cmd/deploycheck does not build (or its modules cannot be downloaded)"
	sed 's/^/        /' "$tmp/deploycheck.log" | tail -n 20
fi

# check NAME CHECK ARGS...: runs one of the checker's checks as NAME, or
# skips it without the checker.
check() {
	local name=$1
	shift
	if [ -n "$deploycheck" ]; then
		run "$name" "$deploycheck" "$@"
	else
		skip "$name (no checker)"
	fi
}

# ---------------------------------------------------------------------------
echo "== compose"
compose_env=(env HOOKWISE_ENV_FILE=.env.example)
if docker compose version >/dev/null 2>&1; then
	run "docker compose config ($(docker compose version --short))" \
		"${compose_env[@]}" docker compose --env-file "$deploy/.env.example" -f "$deploy/compose.yaml" config -q
elif have docker-compose && docker-compose version 2>/dev/null | grep -q '^Docker Compose version'; then
	run "docker-compose config ($(docker-compose version --short))" \
		"${compose_env[@]}" docker-compose --env-file "$deploy/.env.example" -f "$deploy/compose.yaml" config -q
else
	# Debian's docker-compose is Compose v1, which does not read the current
	# Compose spec (top-level name, service_completed_successfully, ...).
	skip "docker compose v2 is not installed (see deploy/README.md, Validate, for building it from the Go module proxy)"
fi
check "compose.yaml loaded with compose-go (schema, interpolation, env file) and cross-checked with nginx.conf and prometheus.yml" \
	compose -env-file "$deploy/.env.example" "$deploy/compose.yaml"

# ---------------------------------------------------------------------------
echo "== hookwise binary (the Dockerfile's build command)"
check "Dockerfile has the static build flags, and a scratch final stage with non-root USER, EXPOSE, VOLUME, ENV, ENTRYPOINT and CMD" \
	dockerfile "$deploy/Dockerfile"
bin=""
if ! have go; then
	skip "no Go toolchain: static build, check-config and smoke test skipped"
elif (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/hookwise" ./cmd/hookwise) >"$tmp/build.log" 2>&1; then
	if is_static "$tmp/hookwise"; then
		pass "CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" ./cmd/hookwise in $src: a static binary ($(du -h "$tmp/hookwise" | cut -f1))"
		bin="$tmp/hookwise"
	else
		fail "the hookwise binary is dynamically linked: it would not run on scratch"
	fi
else
	fail "hookwise does not build in $src (so neither would the image)"
	sed 's/^/        /' "$tmp/build.log" | tail -n 20
fi

# check_config NAME CONFIG_FILE ENV_FILE: hookwise check-config with exactly
# that environment. It exits 1 when the settings could not serve.
check_config() {
	local name=$1 cfg=$2 envfile=$3 line args=()
	while IFS= read -r line; do
		[[ $line =~ ^[A-Z_][A-Z0-9_]*= ]] && args+=("$line")
	done <"$envfile"
	if [ -n "$cfg" ]; then args+=("HOOKWISE_CONFIG=$cfg"); fi
	run "$name" env -i "PATH=$PATH" "${args[@]}" "$bin" check-config
}

if [ -n "$bin" ]; then
	check_config "hookwise check-config with deploy/.env.example (the compose environment)" "" "$deploy/.env.example"
else
	skip "check-config of the compose environment (no binary)"
fi

# The final image, without Docker: the binary alone in an empty root with
# the files the Dockerfile copies (CA bundle, /tmp, /data owned by 65532),
# run as uid 65532 with the image's default database path. It must migrate,
# answer /readyz, and exit 0 on SIGTERM.
scratch_check() {
	local r="$tmp/rootfs" port dead pid code
	mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/data"
	chmod 755 "$r"
	chmod 1777 "$r/tmp"
	chown 65532:65532 "$r/data"
	cp "$bin" "$r/hookwise"
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"; fi
	printf 'sweep:\n  interval: 0s\n' >"$r/etc/hookwise.yaml"
	free_port port && free_port dead || return 1
	env -i HOOKWISE_DATABASE_URL=/data/hookwise.db HOOKWISE_LISTEN="127.0.0.1:$port" HOOKWISE_CONFIG=/etc/hookwise.yaml \
		GITHUB_WEBHOOK_SECRET=x GITHUB_TOKEN=x GITHUB_API_URL="http://127.0.0.1:$dead/" \
		ANTHROPIC_API_KEY=x ANTHROPIC_BASE_URL="http://127.0.0.1:$dead" \
		"$(command -v chroot)" --userspec=65532:65532 "$r" /hookwise serve >"$tmp/scratch.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if ! wait_http "http://127.0.0.1:$port/readyz" 200 30; then
		cat "$tmp/scratch.log"
		return 1
	fi
	echo "ready as uid 65532; /data: $(ls -n "$r/data" | awk 'NR > 1 {print $3 ":" $4, $9}' | tr '\n' ' ')"
	kill -TERM "$pid"
	wait "$pid"
	code=$?
	forget_pid "$pid"
	echo "exit status after SIGTERM: $code"
	[ "$code" -eq 0 ] && [ "$(stat -c %u "$r/data/hookwise.db")" = 65532 ]
}

if [ -z "$bin" ]; then
	skip "image emulation (no binary)"
elif [ "$(id -u)" != 0 ] || ! have chroot || ! have curl; then
	skip "image emulation (needs root, chroot and curl)"
else
	run "the binary alone in an empty root, as uid 65532, on /data/hookwise.db: ready, then a clean SIGTERM exit" scratch_check
fi

# ---------------------------------------------------------------------------
echo "== nginx"
nginx_ok=""
if ! have nginx; then
	skip "nginx is not installed (Debian: apt-get install nginx-light)"
else
	nv="$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"
	# `server NAME resolve` needs nginx 1.27.3; the compose file runs 1.28.
	# An older local nginx checks everything else, with that word removed.
	resolve_ok=""
	if [ "$(printf '%s\n' 1.27.3 "$nv" | sort -V | head -n1)" = 1.27.3 ]; then resolve_ok=1; fi
	# The upstream name only resolves on the compose network: point it at
	# loopback here.
	if [ -n "$resolve_ok" ]; then
		sed -e 's/server hookwise:\([0-9]*\) resolve;/server 127.0.0.1:\1 resolve;/' "$deploy/nginx.conf" >"$tmp/nginx-t.conf"
		note=""
	else
		sed -e 's/server hookwise:\([0-9]*\) resolve;/server 127.0.0.1:\1;/' "$deploy/nginx.conf" >"$tmp/nginx-t.conf"
		note=" (nginx $nv predates 'resolve': checked without it)"
	fi
	run "nginx -t$note" nginx -t -q -c "$tmp/nginx-t.conf" -e stderr && nginx_ok=1
fi

# smoke: hookwise as compose runs it, behind the real nginx.conf, on
# loopback. This starts the processes; the checker sends the requests and
# says what each answered; promtool lints every replica's /metrics.
smoke() {
	local d="$tmp/smoke" secret="smoke-secret-$$" token="smoke-admin-$$"
	mkdir -p "$d"
	chmod 755 "$tmp" "$d"
	local dead lb port internal n=1 db ports=() internals=() i
	free_port dead && free_port lb || { echo "no free port"; return 1; }
	db="$d/hookwise.db"
	if [[ ${HOOKWISE_SMOKE_DATABASE_URL:-} == postgres* ]]; then
		n=3 db="$HOOKWISE_SMOKE_DATABASE_URL"
	fi
	# No periodic sweep, and both upstreams on a dead port: nothing leaves
	# this machine.
	printf 'sweep:\n  interval: 0s\n' >"$d/hookwise.yaml"
	# Each instance as compose runs it: the webhook on one port, /metrics,
	# /readyz and the admin API on another (metrics_listen).
	for i in $(seq 1 "$n"); do
		free_port port && free_port internal || return 1
		ports+=("$port")
		internals+=("$internal")
		env -i "PATH=$PATH" HOOKWISE_CONFIG="$d/hookwise.yaml" HOOKWISE_LISTEN="127.0.0.1:${ports[-1]}" \
			HOOKWISE_METRICS_LISTEN="127.0.0.1:${internals[-1]}" \
			HOOKWISE_DATABASE_URL="$db" HOOKWISE_LOG_FORMAT=json HOOKWISE_ADMIN_TOKEN="$token" \
			GITHUB_WEBHOOK_SECRET="$secret" GITHUB_TOKEN=smoke GITHUB_API_URL="http://127.0.0.1:$dead/" \
			ANTHROPIC_API_KEY=smoke ANTHROPIC_BASE_URL="http://127.0.0.1:$dead" \
			"$bin" serve >"$d/hookwise-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 0 $((n - 1))); do
		wait_http "http://127.0.0.1:${internals[i]}/readyz" 200 60 || {
			echo "hookwise on port ${internals[i]} never became ready"
			cat "$d"/hookwise-*.log
			return 1
		}
	done
	# The real config, on loopback: a dead replica first in the pool, so the
	# first request must be retried on another.
	local servers="server 127.0.0.1:$dead;" internal_servers="" internal_urls=""
	for i in "${ports[@]}"; do servers+=" server 127.0.0.1:$i;"; done
	for i in "${internals[@]}"; do
		internal_servers+=" server 127.0.0.1:$i;"
		internal_urls+="${internal_urls:+,}http://127.0.0.1:$i"
	done
	sed -e "s|server hookwise:8080 resolve;|$servers|" \
		-e "s|server hookwise:9090 resolve;|$internal_servers|" \
		-e "s|listen 8080;|listen 127.0.0.1:$lb;|" \
		-e "s|access_log /dev/stdout hookwise;|access_log $d/access.log hookwise;|" \
		-e "s|error_log stderr warn;|error_log $d/error.log warn;|" \
		"$deploy/nginx.conf" >"$d/nginx.conf"
	nginx -c "$d/nginx.conf" -e "$d/error.log" -g "daemon off; pid $d/nginx.pid;" &
	pids+=($!)
	wait_http "http://127.0.0.1:$lb/nginx-healthz" 200 10 || {
		echo "nginx did not start"
		cat "$d/error.log"
		return 1
	}

	local ok=0 f
	GITHUB_WEBHOOK_SECRET="$secret" HOOKWISE_ADMIN_TOKEN="$token" "$deploycheck" smoke \
		-lb "http://127.0.0.1:$lb" -replica "http://127.0.0.1:${ports[0]}" -internal "$internal_urls" \
		-dead "127.0.0.1:$dead" -access-log "$d/access.log" -metrics-out "$d" || ok=1
	# Every replica's own /metrics, as the checker saved them: Prometheus's lint.
	if have promtool; then
		for f in "$d"/metrics-*.txt; do
			if promtool check metrics <"$f"; then
				echo "ok   promtool check metrics on $(basename "$f")"
			else
				echo "BAD  promtool check metrics on $(basename "$f")"
				ok=1
			fi
		done
	fi
	return $ok
}

if [ -z "$nginx_ok" ]; then
	skip "smoke test through nginx (needs nginx -t to pass)"
elif [ -z "$bin" ]; then
	skip "smoke test through nginx (no hookwise binary)"
elif [ -z "$deploycheck" ]; then
	skip "smoke test through nginx (no checker)"
elif ! have curl; then
	skip "smoke test through nginx (needs curl)"
else
	what="1 instance on SQLite"
	[[ ${HOOKWISE_SMOKE_DATABASE_URL:-} == postgres* ]] && what="3 instances on PostgreSQL"
	run "smoke test: nginx.conf in front of hookwise ($what) on loopback" smoke
fi

# ---------------------------------------------------------------------------
echo "== prometheus"
if have promtool; then
	run "promtool check config prometheus.yml" promtool check config "$deploy/prometheus.yml"
	run "promtool check rules alerts.yml" promtool check rules "$deploy/alerts.yml"
	run "promtool test rules alerts_test.yml" promtool test rules "$deploy/alerts_test.yml"
else
	skip "promtool is not installed (Debian: apt-get install prometheus)"
fi
check "every metric alerts.yml names is defined in the Go code" metrics -src "$src" "$deploy/alerts.yml"

# ---------------------------------------------------------------------------
echo "== grafana"
dashboard="$deploy/grafana/dashboards/hookwise.json"
check "every metric the Grafana dashboard names is defined in the Go code" metrics -src "$src" "$dashboard"
# The dashboard's queries as recording rules, which promtool parses: a
# PromQL mistake fails here rather than as an empty panel.
check "Grafana dashboard: JSON, uid, every panel on the provisioned datasource with a query" \
	dashboard -datasources "$deploy/grafana/provisioning/datasources/prometheus.yaml" -rules-out "$tmp/dashboard-rules.yml" "$dashboard"
if have promtool && [ -s "$tmp/dashboard-rules.yml" ]; then
	run "promtool parses every query of the Grafana dashboard" promtool check rules "$tmp/dashboard-rules.yml"
else
	skip "the dashboard's queries are not parsed (no promtool, or no queries from the checker)"
fi

# ---------------------------------------------------------------------------
echo "== kubernetes"
check "k8s manifests decoded strictly into apps/v1, core/v1, policy/v1 types and cross-checked" \
	k8s -config-out "$tmp/k8s-hookwise.yaml" -env-out "$tmp/k8s-secret.env" "$deploy/k8s"
if [ -n "$bin" ] && [ -s "$tmp/k8s-hookwise.yaml" ]; then
	check_config "hookwise check-config with the ConfigMap and the example Secret" "$tmp/k8s-hookwise.yaml" "$tmp/k8s-secret.env"
else
	skip "check-config of the ConfigMap and the example Secret (no binary, or no checker)"
fi
if have kubectl && kubectl kustomize --help >/dev/null 2>&1; then
	kustomize_check() {
		kubectl kustomize "$deploy/k8s" >"$tmp/kustomized.yaml" || return 1
		local kinds
		kinds="$(grep '^kind:' "$tmp/kustomized.yaml" | sort | tr '\n' ' ')"
		echo "kinds: $kinds"
		[ "$kinds" = "kind: ConfigMap kind: Deployment kind: PodDisruptionBudget kind: Service " ] &&
			grep -q 'image: registry.example.com/hookwise:0.1.0' "$tmp/kustomized.yaml"
	}
	run "kubectl kustomize deploy/k8s (ConfigMap, Deployment, PodDisruptionBudget, Service; image set)" kustomize_check
else
	skip "kubectl is not installed: kustomization.yaml checked by the Go checker only"
fi

# ---------------------------------------------------------------------------
echo "== docker"
if have docker && docker info >/dev/null 2>&1; then
	run "docker build -f deploy/Dockerfile ." docker build -q -f "$deploy/Dockerfile" -t hookwise:validate "$root"
else
	skip "no Docker engine runs here: the image build is not tried (its build command is, above)"
fi

echo
echo "deploy/validate.sh: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ]; then
	printf '  failed: %s\n' "${failures[@]}"
	exit 1
fi
