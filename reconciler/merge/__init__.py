"""Pure merge functions: strategic merge patch, JSON merge patch, JSON patch, three-way apply."""
