"""Forwarding alarms to alarm-receiving centres' own receivers over SIA DC-09 (IP)."""
