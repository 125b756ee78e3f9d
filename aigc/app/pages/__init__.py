"""One module per page, named as its URL path; pages never import each other or the frame."""
