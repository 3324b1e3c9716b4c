"""Networks: a VPC in a connection's account, provisioned by a CloudFormation stack of ours or adopted."""
