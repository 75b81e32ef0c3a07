"""The SQL of the read scenarios, answered entirely by PostgreSQL (json_build_object / json_agg, the
PostgREST technique). Used by the baseline app and, with random ids, by the pgbench scripts.

Each statement fetches the same rows the service reads for that request (page, total, summary,
authorization balances, availability inputs, conflict inputs) and returns the response body as JSON
text. It does not do the service's work in Python: no authentication, no free-slot arithmetic, no
conflict rules. It is the ceiling for "one round trip, JSON built by the database".
"""

from __future__ import annotations

import re

# A row of the page with the names and the authorization block of docs/API.md (balances from `balance`).
_SESSION_JSON = """json_build_object(
    'id', p.id, 'therapist_id', p.therapist_id, 'client_id', p.client_id,
    'start_time', p.start_time, 'end_time', p.end_time,
    'duration_minutes', (extract(epoch FROM p.end_time - p.start_time) / 60)::int,
    'status', p.status, 'location_type', p.location_type, 'location_id', p.location_id,
    'service_code', p.service_code, 'series_id', p.series_id,
    'therapist', json_build_object('id', p.therapist_id, 'full_name', p.therapist_name),
    'client', json_build_object('id', p.client_id, 'full_name', p.client_name),
    'authorization', CASE WHEN p.authorization_id IS NOT NULL THEN json_build_object(
        'id', p.authorization_id, 'end_date', au.end_date,
        'sessions_remaining', greatest(coalesce(b.remaining, 0), 0) / greatest(p.units, 1),
        'units_remaining', coalesce(b.remaining, 0)) END{detail})"""
_DETAIL = ", 'notes', p.notes, 'created_at', p.created_at, 'updated_at', p.updated_at"

# Remaining units per (authorization, service) of the authorizations named by CTE `{source}`.
_BALANCE = """used AS (
    SELECT authorization_id, service_code, sum(units) AS units FROM sessions
    WHERE authorization_id IN (SELECT authorization_id FROM {source}) AND consumes_units
    GROUP BY 1, 2
    UNION ALL
    SELECT authorization_id, service_code, sum(units) FROM hold_occurrences
    WHERE authorization_id IN (SELECT authorization_id FROM {source})
      AND active AND expires_at > $7
    GROUP BY 1, 2
), spent AS (
    SELECT authorization_id, service_code, sum(units)::int AS units FROM used GROUP BY 1, 2
), balance AS (
    SELECT a.authorization_id, a.service_code, a.approved_units - coalesce(s.units, 0) AS remaining
    FROM authorization_services a LEFT JOIN spent s USING (authorization_id, service_code)
    WHERE a.authorization_id IN (SELECT authorization_id FROM {source})
)"""

# The service's cursor (kit/cursor.py): unpadded base64url of ["sessions", start time, id].
_CURSOR_TEXT = """translate(rtrim(replace(encode(convert_to(json_build_array('sessions',
    translate(to_char(l.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24"h"MI"m"SS"Z"'),
              'hm', '::'),
    l.id)::text, 'UTF8'), 'base64'), E'\\n', ''), '='), '+/', '-_')"""


def sessions_page_sql(*, dates: bool, cursor: bool) -> str:
    """get-sessions-optimized for one therapist. $1 organization, $2 therapist, $3/$4 start range,
    $5 limit, $6 offset, $7 now, $8/$9 cursor position (start_time, id)."""
    where = "organization_id = $1 AND therapist_id = $2"
    if dates:
        where += " AND start_time >= $3 AND start_time < $4"
    else:
        where += " AND $3::timestamptz IS NULL AND $4::timestamptz IS NULL"
    seek = " AND (m.start_time, m.id) < ($8::timestamptz, $9::uuid)" if cursor else ""
    return f"""WITH matching AS (
    SELECT * FROM sessions WHERE {where}
), page AS (
    SELECT m.*, t.full_name AS therapist_name, c.full_name AS client_name
    FROM matching m JOIN therapists t ON t.id = m.therapist_id JOIN clients c ON c.id = m.client_id
    WHERE true{seek}
    ORDER BY m.start_time DESC, m.id DESC LIMIT $5 + 1 OFFSET $6
), shown AS (
    SELECT * FROM page ORDER BY start_time DESC, id DESC LIMIT $5
), {_BALANCE.format(source="shown")}
SELECT json_build_object(
  'success', true,
  'data', json_build_object(
    'sessions', coalesce((
        SELECT json_agg({_SESSION_JSON.format(detail=_DETAIL)} ORDER BY p.start_time DESC, p.id DESC)
        FROM shown p
        LEFT JOIN authorizations au ON au.id = p.authorization_id
        LEFT JOIN balance b ON b.authorization_id = p.authorization_id
                           AND b.service_code = p.service_code), '[]'),
    'pagination', (
        SELECT json_build_object(
            'limit', $5, 'total', (SELECT count(*) FROM matching),
            'has_next_page', (SELECT count(*) FROM page) > $5,
            'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $5 THEN (
                SELECT {_CURSOR_TEXT}
                FROM (SELECT * FROM shown ORDER BY start_time, id LIMIT 1) l) END)),
    'summary', (
        SELECT json_build_object(
            'total_sessions', count(*),
            'scheduled', count(*) FILTER (WHERE status = 'scheduled'),
            'in_progress', count(*) FILTER (WHERE status = 'in_progress'),
            'completed', count(*) FILTER (WHERE status = 'completed'),
            'cancelled', count(*) FILTER (WHERE status = 'cancelled'),
            'no_show', count(*) FILTER (WHERE status = 'no_show'),
            'upcoming', count(*) FILTER (WHERE status = 'scheduled' AND start_time > $7),
            'scheduled_minutes', coalesce(round(sum(extract(epoch FROM end_time - start_time) / 60)
                FILTER (WHERE status <> 'cancelled')), 0))
        FROM matching)),
  'performance', json_build_object('query_time_ms', 0))::text"""  # noqa: S608 - fixed text


def schedule_week_sql() -> str:
    """get-schedule-data-batch with availability and conflicts inputs. $1 organization,
    $2 therapist ids, $3/$4 range, $5 batch size, $6 offset, $7 now."""
    near = "start_time < $4 + interval '1 day' AND end_time > $3 - interval '1 day'"
    return f"""WITH matching AS (
    SELECT * FROM sessions
    WHERE organization_id = $1 AND therapist_id = ANY($2::uuid[])
      AND start_time < $4 AND end_time > $3
), page AS (
    SELECT m.*, t.full_name AS therapist_name, c.full_name AS client_name
    FROM matching m JOIN therapists t ON t.id = m.therapist_id JOIN clients c ON c.id = m.client_id
    ORDER BY m.start_time, m.id LIMIT $5 OFFSET $6
), {_BALANCE.format(source="matching")}
SELECT json_build_object(
  'success', true,
  'data', json_build_object(
    'sessions', coalesce((
        SELECT json_agg({_SESSION_JSON.format(detail="")} ORDER BY p.start_time, p.id)
        FROM page p
        LEFT JOIN authorizations au ON au.id = p.authorization_id
        LEFT JOIN balance b ON b.authorization_id = p.authorization_id
                           AND b.service_code = p.service_code), '[]'),
    'availability', json_build_object(
        'therapists', (SELECT json_agg(json_build_object('id', id, 'time_zone', time_zone))
                       FROM therapists WHERE organization_id = $1 AND id = ANY($2::uuid[])),
        'windows', (SELECT json_agg(json_build_array(therapist_id, weekday, start_local, end_local))
                    FROM availability_windows WHERE therapist_id = ANY($2::uuid[])),
        'time_off', (SELECT json_agg(json_build_array(therapist_id, kind, start_time, end_time))
                     FROM time_off WHERE therapist_id = ANY($2::uuid[]) AND {near}),
        'busy', (SELECT json_agg(json_build_array(therapist_id, start_time, end_time))
                 FROM sessions WHERE therapist_id = ANY($2::uuid[]) AND status <> 'cancelled'
                   AND {near}),
        'holds', (SELECT json_agg(json_build_array(therapist_id, start_time, end_time))
                  FROM hold_occurrences WHERE therapist_id = ANY($2::uuid[]) AND active
                    AND expires_at > $7 AND {near})),
    'conflicts', (
        SELECT json_agg(json_build_array(m.id, m.therapist_id, m.client_id, m.start_time,
                                         m.end_time, m.location_id, m.location_type,
                                         au.status, au.start_date, au.end_date, b.remaining)
                        ORDER BY m.start_time, m.id)
        FROM matching m
        LEFT JOIN authorizations au ON au.id = m.authorization_id
        LEFT JOIN balance b ON b.authorization_id = m.authorization_id
                           AND b.service_code = m.service_code
        WHERE m.status <> 'cancelled'),
    'pagination', json_build_object(
        'total_records', (SELECT count(*) FROM matching), 'batch_size', $5,
        'current_offset', $6),
    'performance', json_build_object('query_time_ms', 0, 'cache_hit', false)))::text"""  # noqa: S608


def dropdown_sql() -> str:
    """get-dropdown-data?types=all. $1 organization, $2 the built-in vocabularies (JSON)."""
    return """SELECT json_build_object(
  'success', true,
  'data', json_build_object(
    'therapists', coalesce((
        SELECT json_agg(json_build_object('id', id, 'full_name', full_name,
                                          'credential', credential, 'status', status)
                        ORDER BY full_name, id)
        FROM therapists
        WHERE organization_id = $1 AND status = 'active' AND archived_at IS NULL), '[]'),
    'clients', coalesce((
        SELECT json_agg(json_build_object('id', id, 'full_name', full_name, 'status', status)
                        ORDER BY full_name, id)
        FROM clients
        WHERE organization_id = $1 AND status = 'active' AND archived_at IS NULL), '[]'),
    'locations', coalesce((
        SELECT json_agg(json_build_object('id', id, 'name', name,
                                          'location_type', location_type, 'is_active', is_active)
                        ORDER BY name, id)
        FROM locations WHERE organization_id = $1 AND is_active), '[]'),
    'vocabularies', $2::json),
  'cached', false,
  'lastUpdated', now())::text"""


def pgbench_script(sql: str, variables: dict[str, str], params: dict[int, str]) -> str:
    """A pgbench custom script: `\\set` lines, then `sql` with each $n replaced by an expression."""

    def substitute(match: re.Match[str]) -> str:
        return f"({params[int(match.group(1))]})"

    lines = [f"\\set {name} {expr}" for name, expr in variables.items()]
    return "\n".join([*lines, re.sub(r"\$(\d+)", substitute, sql) + ";", ""])
