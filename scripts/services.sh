#!/usr/bin/env bash
# Makes sure what the test suites need is there: PostgreSQL on 127.0.0.1:5432, Redis on
# 127.0.0.1:6379, MariaDB/MySQL on 127.0.0.1:3306 (started when installed but stopped) and Debian's Chromium for the inspector's
# browser test (installed with apt when missing and we are root). It never skips anything: when a
# service cannot be had, it says so and the suites that need it fail.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up && echo "services: PostgreSQL is up" || echo "services: PostgreSQL is NOT reachable on 127.0.0.1:5432 (apt-get install -y postgresql); its suites will fail"

if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
redis_up && echo "services: Redis is up" || echo "services: Redis is NOT reachable on 127.0.0.1:6379 (apt-get install -y redis-server); its suites will fail"

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }
if ! mysql_up && command -v mariadbd >/dev/null 2>&1; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mysql_up && break; sleep 1; done
fi
mysql_up && echo "services: MariaDB/MySQL is up" || echo "services: MariaDB/MySQL is NOT reachable on 127.0.0.1:3306 as root without a password (apt-get install -y mariadb-server); its suites will fail"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing Debian's chromium for the inspector's browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
      echo "services: could not install chromium; the inspector's browser test will fail"
  else
    echo "services: chromium is missing (apt-get install -y chromium); the inspector's browser test will fail"
  fi
fi
exit 0
