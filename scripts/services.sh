#!/usr/bin/env bash
# Makes sure Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672, guest/guest) are running:
# starts them when installed but stopped, installs them from Debian packages when missing
# (as root). Never stops or restarts a running service. With --browser, also installs the web
# page's test browser when missing: Debian's chromium and chromium-driver.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port, seconds, name
  for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done
  echo "services.sh: $3 did not open port $1 within $2 s" >&2; return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "services.sh: $* missing and not root: install it (apt-get install $*)" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  echo "services.sh: starting redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null
  wait_port 6379 30 redis
fi

if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  echo "services.sh: starting rabbitmq-server"
  if ! (service rabbitmq-server start >/dev/null 2>&1); then
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_port 5672 120 rabbitmq
  rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
echo "services.sh: redis and rabbitmq are up"

if [ "${1:-}" = --browser ]; then
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "services.sh: installing chromium and chromium-driver (the web page's test browser)"
    apt_install chromium chromium-driver
  fi
  echo "services.sh: $(/usr/bin/chromedriver --version | head -1)"
fi
