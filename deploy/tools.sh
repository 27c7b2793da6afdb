#!/usr/bin/env bash
# Installs the tools deploy/validate.sh checks the deployment files with,
# where this machine lacks them and can get them: nginx and promtool from
# Debian's packages, Docker Compose v2 built from the Go module proxy as a
# Docker CLI plugin (Debian's docker-compose is v1, which cannot read
# compose.yaml). kubectl is not packaged by Debian; without it validate.sh
# checks kustomization.yaml with its Go checker only.
#
#   bash deploy/tools.sh
#
# Installs nothing that is already there; exits non-zero if an install was
# tried and failed (validate.sh then skips that check).
set -uo pipefail
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
status=0

packages=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
if [ ${#packages[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "deploy/tools.sh: installing ${packages[*]}"
		# The packages' services are not started: only their checkers run.
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >/tmp/hookwise-tools-apt.log 2>&1 &&
			! { apt-get update >>/tmp/hookwise-tools-apt.log 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >>/tmp/hookwise-tools-apt.log 2>&1; }; then
			echo "deploy/tools.sh: apt-get install ${packages[*]} failed (see /tmp/hookwise-tools-apt.log)"
			status=1
		fi
	else
		echo "deploy/tools.sh: ${packages[*]} missing, and no apt-get as root to install them"
	fi
fi

compose_version=v2.40.3
if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 && command -v go >/dev/null 2>&1; then
	echo "deploy/tools.sh: building Docker Compose $compose_version"
	work="$(mktemp -d)"
	if (cd "$work" && go mod init compose >/dev/null 2>&1 &&
		GOFLAGS=-mod=mod go get "github.com/docker/compose/v2@$compose_version" &&
		mkdir -p "$HOME/.docker/cli-plugins" &&
		GOFLAGS=-mod=mod go build -ldflags "-X github.com/docker/compose/v2/internal.Version=$compose_version" \
			-o "$HOME/.docker/cli-plugins/docker-compose" github.com/docker/compose/v2/cmd) >/tmp/hookwise-tools-compose.log 2>&1; then
		docker compose version
	else
		echo "deploy/tools.sh: building Docker Compose failed (see /tmp/hookwise-tools-compose.log)"
		status=1
	fi
	rm -rf "$work"
fi
exit $status
