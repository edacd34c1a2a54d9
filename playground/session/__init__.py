"""The UI-free session: the state a front end needs (event book, views, action lines, lesson runs, live recording)."""
