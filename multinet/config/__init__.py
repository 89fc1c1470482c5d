"""multinet's own configuration: the typed netconf, its schema validator, logging set-up.

netconf    the stdin netconf, parsed once into a typed object
schema     validate JSON against multinet's schemas without importing jsonschema
logs       logging from Multus's keys: logLevel, logFile, logToStderr
logrotate  a size-rotated logFile (imported only when rotation is asked)
jsonfile   read a JSON object from a file, with errors naming the file
spelling   did-you-mean for a mistyped key, the same in every validator
"""
