# The incident summary the incident playbooks send when no other body is chosen (a Jinja template the app
# renders over the incident; the build puts this text at the top of each script using it).
INCIDENT_SUMMARY_TEMPLATE = u"""{%- set style = "font-family: Arial, sans-serif; color: #1f3864" -%}
{%- macro row(label, field_name) -%}
  {%- set value = template_helper.get_incident_value(incident, field_name) -%}
  {%- if value %}
  <tr><td style="{{ style }}; font-weight: bold; padding-right: 12px">{{ label }}</td>
      <td style="{{ style }}">{{ value }}</td></tr>
  {%- endif -%}
{%- endmacro -%}
<h3 style="{{ style }}">Incident {{ incident.id }}: {{ incident.name }}</h3>
<table>
  {{- row("Severity", "severity_code") }}
  {{- row("Status", "plan_status") }}
  {{- row("Phase", "phase_id") }}
  {{- row("Created", "create_date") }}
  {{- row("Type", "incident_type_ids") }}
  {{- row("Owner", "owner_id") }}
</table>
<h3 style="{{ style }}">Description</h3>
<div style="{{ style }}">{{ template_helper.get_incident_value(incident, "description") | safe_html }}</div>
<p><a href="{{ template_helper.generate_incident_url(incident.id) }}">Open incident {{ incident.id }} in SOAR</a></p>
"""
