"""The vjepa-lab dashboard: pure queries (`queries.*`, one module per page family), Altair charts
(`charts`), thin Streamlit pages (`app`, `views/`)."""
