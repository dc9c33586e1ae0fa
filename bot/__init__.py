"""ecr-cache-bot: BuildKit layer cache in Amazon ECR for AWS CodeBuild."""
