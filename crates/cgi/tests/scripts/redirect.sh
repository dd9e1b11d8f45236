#!/bin/sh
# A local redirect (RFC 3875 section 6.2.2): the host fetches the target itself.
printf 'Location: %s/env.sh/redirected?via=redirect\n\n' "${SCRIPT_NAME%/*}"
