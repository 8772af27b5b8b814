"""RedisSecretFunction: Custom::ValohaiRedisSecret."""

import boto3

from valohai_cr import runtime
from valohai_cr.lifecycle import CustomResource
from valohai_cr.redis_secret import RedisSecretProvider

runtime.freeze_imports()

logger = runtime.logger("valohai-redis-secret")
resource = CustomResource(
    lambda: RedisSecretProvider(boto3.client("secretsmanager", config=runtime.CLIENT_CONFIG)),
    logger,
    cloudformation=runtime.cloudformation,
)
handler = resource.handler
