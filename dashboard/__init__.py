"""The vjepa-lab dashboard: pure queries (`queries`), Altair charts (`charts`), thin Streamlit pages (`app`)."""
