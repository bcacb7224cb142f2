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
# The servers file renders one line per server (a block tag ending a line once ate the newline,
# joining two servers' command lines into one).
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cat > "$W/render.yml" <<'YML'
- name: Render the servers file
  hosts: localhost
  gather_facts: false
  vars:
    vigil_node_servers:
      - {name: kv, service: kv, listen: "198.18.0.1:7750", store: "198.18.0.2:7740"}
      - {name: lock, service: lock, listen: "198.18.0.1:7751", store: "198.18.0.2:7740", instance: l1}
    vigil_log_level: info
    vigil_tls: true
    vigil_tls_dir: /etc/vigil/tls
    vigil_node_device: ""
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{{ templates }}/servers.conf.j2"
        dest: "{{ out }}"
        mode: "0644"
YML
ansible-playbook -i localhost, -c local "$W/render.yml" -e "templates=$PWD/roles/vigil/templates" \
  -e "out=$W/servers.conf" > "$W/render.log" 2>&1 || { cat "$W/render.log"; exit 1; }
servers=$(grep -c '^[a-z]*=/usr/bin/vigil-server --service [a-z]* ' "$W/servers.conf")
[[ $servers -eq 2 && $(grep -c -- '--log-level' "$W/servers.conf") -eq 2 ]] ||
  { cat "$W/servers.conf"; echo "servers.conf: expected 2 lines, one per server"; exit 1; }
echo "servers.conf: one line per server"
echo "ansible checks passed"
