"""Templates: the Jinja sandbox (render), the template_helper names templates call (helper), warnings
for authors (check), render time and size budgets (limits) and safe_html (sanitize)."""
