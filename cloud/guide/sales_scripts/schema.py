"""Tables for script templates and for which template each card showed (A/B outcomes).

Version 4 of the guide's tables (``cloud.guide.schema``). The ``IF NOT EXISTS`` dates from when
tests created these tables themselves; it stays so that version 4 runs exactly as it always has.
"""

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS script_templates (
        id TEXT PRIMARY KEY, situation TEXT NOT NULL, lang TEXT NOT NULL, variant TEXT NOT NULL, text TEXT NOT NULL,
        active BIGINT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, actor TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS script_templates_key ON script_templates (situation, lang, variant)",
    """CREATE TABLE IF NOT EXISTS script_shown (
        card_id TEXT PRIMARY KEY, person_id TEXT NOT NULL, template_id TEXT NOT NULL, variant TEXT NOT NULL,
        situation TEXT NOT NULL, lang TEXT NOT NULL, ts TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS script_shown_template ON script_shown (template_id, variant)",
)
