"""Row dumps of the corpus at its head (c13), for comparing databases built by different routes.

Each query lists its columns and ends with ORDER BY. Every stored value is a fixed
literal (``created_at`` included: c03 gives it); ``weight`` is read as text, because
NaN never equals NaN in Python.
"""

ROW_QUERIES: list[str] = [
    "SELECT id, code, full_name, code_pattern, ref_pattern, credit_limit, score, active, "
    "created_at, nickname FROM corpus_customers ORDER BY id",
    "SELECT id, customer_id, reference, amount, status, note, discount, invoice_no, project_id "
    "FROM corpus_orders ORDER BY id",
    "SELECT id, name, status::text, priority::text, owner_id FROM corpus_projects ORDER BY id",
    "SELECT id, customer_id, title, body, kind, weight::text, tags FROM corpus_notes ORDER BY id",
    "SELECT id, channel::text, message FROM corpus_audit_log ORDER BY id",
    "SELECT customer_id, code, name, order_count, open_orders, paid_orders, total_amount "
    "FROM corpus_customer_orders ORDER BY customer_id",
    "SELECT id, label FROM corpus_note_labels ORDER BY id",
    "SELECT last_value, is_called FROM corpus_invoice_no_seq",
]
