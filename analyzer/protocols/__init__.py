"""Protocol parsers fed by reassembly: detection by content, HTTP/1.x, HTTP/2."""
