#!/usr/bin/env bash
# One role and one database per service (no service reads another's tables).
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d).
# The passwords come from POSTGRES_<SERVICE>_PASSWORD; to change one later use
#   docker compose exec postgres psql -U postgres -c "ALTER ROLE warren_orders PASSWORD '...'"
set -euo pipefail

# >>> generated: postgres-databases (warren generate; edit the service declarations, not this block)
services=(gateway accounts carts inventory orders payments shipping)
# <<< generated: postgres-databases
for service in "${services[@]}"; do
    variable="POSTGRES_${service^^}_PASSWORD"
    password="${!variable:?$variable is not set}"
    # psql variables quote the names and the password; nothing is spliced into SQL text.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="warren_${service}" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    echo "created role and database warren_${service}"
done
