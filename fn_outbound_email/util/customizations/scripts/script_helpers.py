# Helpers shared by the pre-processing scripts (the build puts this text at the top of each script using it).
import hashlib
import re
import time

# Right-hand part of the Message-IDs the playbooks generate: set it to your mail domain
MESSAGE_ID_DOMAIN = "soar.example.com"


def text_of(value):
    """A text area input arrives as {content, format}: its text (None when the input is empty)."""
    return value.content if value else None


def template_safe(html):
    """HTML placed inside a Jinja template: braces as entities so SOAR data never becomes template code."""
    return u"{0}".format(html or "").replace("{", "&#123;").replace("}", "&#125;")


def html_text(text):
    """Plain text shown in HTML: escaped, line breaks kept, safe inside a Jinja template too."""
    escaped = u"{0}".format(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return template_safe(escaped.replace('"', "&quot;").replace("\n", "<br>\n"))


def html_to_text(html):
    """Rich text of SOAR as plain text: scripts, styles and comments dropped with their content, other tags
    dropped, line breaks kept, common entities decoded. (Hand-written: SOAR scripts cannot import html parsers.)"""
    text = re.sub(r"<!--.*?(-->|$)", "", html or "", flags=re.DOTALL)
    text = re.sub(r"<(script|style|head|title|template|iframe|object)\b.*?(</\1\s*>|$)", "", text,
                  flags=re.IGNORECASE | re.DOTALL)
    text = re.sub(r"<br\s*/?>|</p>|</div>|</li>|</tr>|</h[1-6]>", "\n", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^>]*>", "", text)
    for entity, char in (("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"),
                         ("&amp;", "&")):
        text = text.replace(entity, char)
    return text.strip()


def fill_placeholders(template, values):
    """`template` with each @NAME@ replaced by str(values[NAME]), in one pass: a value is never scanned again, so
    a value that holds another placeholder's name stays as it is. An @NAME@ not in `values` is left alone."""
    return re.sub(r"@([A-Z_]+)@", lambda found: u"{0}".format(values[found.group(1)]) if found.group(1) in values
                  else found.group(0), template)


def new_message_id(*parts):
    """A Message-ID unique to this moment and these parts (e.g. incident and task ids)."""
    seed = "{0}/{1}".format(time.time(), "/".join(str(part) for part in parts))
    return "{0}.{1}@{2}".format(int(time.time() * 1000), hashlib.sha256(seed.encode("utf-8")).hexdigest()[:20],
                                MESSAGE_ID_DOMAIN)


def set_body(fn_inputs, body, template, merge, fallback_template=None):
    """send_email2's body inputs: the body as written; or the chosen template, followed by the body when `merge`;
    else `fallback_template` (an inline template)."""
    if template and (not body or merge):
        fn_inputs.mail_template_label = template
        if body:
            fn_inputs.mail_body = body
            fn_inputs.mail_merge_body = True
    elif body:
        fn_inputs.mail_body = body
    elif fallback_template:
        fn_inputs.mail_inline_template = fallback_template
