"""Cloud providers: the calls Sailplane makes to them (AWS through boto3)."""
