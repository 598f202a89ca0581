import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

export class MemrelayApi implements ICredentialType {
	name = 'memrelayApi';

	displayName = 'Memrelay API';

	icon: Icon = { light: 'file:../icons/memrelay.svg', dark: 'file:../icons/memrelay.dark.svg' };

	documentationUrl =
		'https://github.com/memrelay/memrelay/tree/main/n8n-nodes-memrelay#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'http://127.0.0.1:8080',
			placeholder: 'https://memrelay.example.com',
			description: 'Where your memrelay gateway answers (without /api/v1)',
			required: true,
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description:
				'A memrelay API key (memrelay keys create --org ORG --scopes read,write; the trigger needs admin scope)',
			required: true,
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/api/v1/me',
			method: 'GET',
		},
	};
}
