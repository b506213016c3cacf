"""Local runtime: serves the Lambda handlers over HTTP exactly as API Gateway would, routed by template.yaml."""
