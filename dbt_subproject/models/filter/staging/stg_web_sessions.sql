-- Every web session filed under the run's months, classified. Anonymous sessions (no client_id) are valid but belong to no client.
-- A view: web_sessions and rejected_rows read it, each picking the copy of a repeated row that counts (copy_rule).
{{ classified_landed_rows('web_sessions', 'session_start_ts', anonymous_valid=true) }}
