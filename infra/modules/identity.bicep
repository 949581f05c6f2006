// The app's user-assigned managed identity: every role below is granted to it, and the app, the
// host's storage connection and the deployment all authenticate as it (no key, no secret).
@minLength(3)
@maxLength(128)
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
