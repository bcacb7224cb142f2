#!/usr/bin/env bash
# The deploy playbooks and roles: ansible-lint (production profile, offline) and a syntax check of
# every playbook against the example inventory. Usage: ansible_test.sh SOURCE_DIR
set -euo pipefail
cd "$1/deploy/ansible"
ansible-lint --offline --profile production
for p in playbooks/*.yml; do
  ansible-playbook --syntax-check "$p" > /dev/null
  echo "syntax ok: $p"
done
echo "ansible checks passed"
