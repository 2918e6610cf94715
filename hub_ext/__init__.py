"""goldenhub's hub-side tools: the course catalog, image tooling and the command line."""
