# The task notice the task playbooks send when no other body is chosen: a Jinja template the app renders, with
# the task's link, name and instructions written in (the build puts this text at the top of each script using it).
TASK_NOTICE_TEMPLATE = u"""{%- set style = "font-family: Arial, sans-serif; color: #1f3864" -%}
<h3 style="{{ style }}">Incident {{ incident.id }}: {{ incident.name }}</h3>
<table>
  <tr><td style="{{ style }}; font-weight: bold; padding-right: 12px">Task</td>
      <td style="{{ style }}"><a href="@TASK_URL@">@TASK_NAME@</a></td></tr>
  <tr><td style="{{ style }}; font-weight: bold; padding-right: 12px">Severity</td>
      <td style="{{ style }}">{{ template_helper.get_incident_value(incident, "severity_code") }}</td></tr>
</table>
<h3 style="{{ style }}">Instructions</h3>
<div style="{{ style }}">{{ @INSTRUCTIONS@ | safe_html }}</div>
"""


def task_notice(incident_id, task):
    """TASK_NOTICE_TEMPLATE for `task`. The name is escaped text. The instructions are rich text anyone editing the
    task may write: they go in as a Jinja string literal through the app's safe_html filter, which keeps their
    formatting and drops scripts, forms, images and non-web links (a playbook script cannot import the app's
    sanitizer, the app applies it when it renders the template). Neither can become template code."""
    task_url = "{{ template_helper.generate_task_url(%d, %d) }}" % (incident_id, task.id)
    return (TASK_NOTICE_TEMPLATE.replace("@TASK_URL@", task_url).replace("@TASK_NAME@", html_text(task.name))
            .replace("@INSTRUCTIONS@", jinja_string(task.instructions or u"-")))
