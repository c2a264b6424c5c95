"""The application shell: settings, cache, server routes, page layouts and components."""
