"""The API's request and response bodies, by area. Routes import them from here;
the error body (ErrorOut) is with the error mapping in cloud/api/errors.py."""
