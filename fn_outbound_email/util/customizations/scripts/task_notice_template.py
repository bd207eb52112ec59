# The task notice the task playbooks send when no other body is chosen: a Jinja template the app renders. The
# task's name and instructions are read by the template as data (template_helper.get_task), never written into
# its source: anyone who can edit a task chooses that text. Only the task's id is filled in, as a number, in one
# pass (fill_placeholders), so nothing filled in is ever read again as a placeholder or as template code.
TASK_NOTICE_TEMPLATE = u"""{%- set style = "font-family: Arial, sans-serif; color: #1f3864" -%}
{%- set task = template_helper.get_task(incident.id, @TASK_ID@) -%}
<h3 style="{{ style }}">Incident {{ incident.id }}: {{ incident.name }}</h3>
<table>
  <tr><td style="{{ style }}; font-weight: bold; padding-right: 12px">Task</td>
      <td style="{{ style }}"><a href="{{ template_helper.generate_task_url(incident.id, task.id) }}">{{ task.name }}</a></td></tr>
  <tr><td style="{{ style }}; font-weight: bold; padding-right: 12px">Severity</td>
      <td style="{{ style }}">{{ template_helper.get_incident_value(incident, "severity_code") }}</td></tr>
</table>
<h3 style="{{ style }}">Instructions</h3>
<div style="{{ style }}">{{ (task.instructions or "-") | safe_html }}</div>
"""


def task_notice(incident_id, task):
    """TASK_NOTICE_TEMPLATE for `task` (its instructions pass the app's safe_html filter when rendered: their
    formatting stays, scripts, forms, images and non-web links go)."""
    return fill_placeholders(TASK_NOTICE_TEMPLATE, {"TASK_ID": int(task.id)})
