#!/bin/sh
# Output that is not a CGI response.
echo '<html>no headers</html>'
