"""The contest edge: the DRES client and its session (client.py), the answers it sends
(answers.py), the submission log it keeps (submissions.py), the searches it logs to DRES
(query_log.py), the AI Challenge's answer files (export.py) and the app's DRES controls (panel.py)."""
