// An optional Batch account for the Kubernetes pools. Only Microsoft Entra ID authentication is
// allowed (no shared account keys): the app calls Batch with its identity and a role on this account.
@minLength(3)
@maxLength(24)
param name string
param location string
param tags object

@allowed(['BatchService', 'UserSubscription'])
param poolAllocationMode string

@description('Key Vault resource id; required by UserSubscription mode, ignored otherwise.')
param keyVaultId string

var userSubscription = poolAllocationMode == 'UserSubscription'

resource account 'Microsoft.Batch/batchAccounts@2024-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    poolAllocationMode: poolAllocationMode
    allowedAuthenticationModes: ['AAD']
    publicNetworkAccess: 'Enabled'
    keyVaultReference: userSubscription ? {
      id: keyVaultId
      url: 'https://${last(split(keyVaultId, '/'))}${environment().suffixes.keyvaultDns}/'
    } : null
  }
}

output id string = account.id
output endpoint string = 'https://${account.properties.accountEndpoint}'
