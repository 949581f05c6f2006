// A user-assigned managed identity. main.bicep makes two: the app's (every app role is granted to it,
// and the app, the host's storage connection and the deployment authenticate as it: no key, no secret)
// and, with the Batch feature, the pool nodes' own, which holds only the nodes' blob roles.
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
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
