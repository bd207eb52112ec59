"""Templates: the Jinja sandbox (render), the template_helper names templates call (helper), warnings
for authors (check), render time and size budgets (limits), safe_html (sanitize), and the render worker
processes with hard limits that sends and the command line render in (worker: the app's side, worker_pool:
starting, talking to and keeping the processes, worker_main: the process's side)."""
