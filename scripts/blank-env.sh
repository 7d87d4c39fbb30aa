# Sourced by the scripts behind make: an exported variable set but blank (empty or
# spaces) is unset, as the app's settings read every variable (docs/configuration.md).
# `${X:-default}` took spaces for a value (HOST=" " gave nginx no address), and
# gunicorn reads WEB_CONCURRENCY before its configuration file (WEB_CONCURRENCY= failed).
while IFS= read -r name; do
  value=${!name-}
  if [[ -z ${value//[[:space:]]/} ]]; then unset "$name"; fi
done < <(compgen -e)
